"""One image's rows against what the app holds for its input: the differences.

What an upload of the rows would store comes from the code the upload builds its requests
with, never a second copy of its rules: the input's concepts and metadata from
:func:`~ingest.stages.create.labels_of` (what ``PostInputs`` carries, and what completing
an existing input aims at), each region's annotation id, box or polygon, concepts and
``annotation_info`` from the row as :mod:`ingest.wire` encodes it.

The rules of comparison:

* the input: processed successfully (``INPUT_DOWNLOAD_SUCCESS``), else every row of the
  image differs (an input that failed or is still processing holds no annotation);
* its concepts: every concept the rows give the input, with the same value (1 present, 0
  absent); concepts the app holds besides are *extra*;
* its metadata: each top-level key the rows name holds exactly the rows' value (numbers
  compared as the JSON numbers a ``Struct`` keeps); other keys are *extra* - as the upload
  leaves them, since it cannot tell another tool's key from one an older version of the
  data had;
* each region, by its annotation id (derived from the input, the region and its concepts,
  so that a region at other coordinates or with other concepts in the data has another
  id): present; the same kind of region at the same coordinates within float32 precision
  (the service keeps ``BoundingBox`` and ``Point`` fields as float32); the same concepts
  with the same values; the same ``annotation_info``. A region changed in the app under
  its own id (a ``PatchAnnotations``) is a difference of that region;
* annotations of the input that no row has: *extra*. An annotation without a region is
  the input's own (Clarifai makes one for an input given concepts or metadata, and labels
  of the whole image are such annotations): extra only when it names a concept the rows
  do not give the input, with that value.

Concept names are not compared (a concept's name is the app's, shared by every input).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from google.protobuf import json_format

from ingest.client import describe
from ingest.model import NO_CELLS, Image, Row
from ingest.stages.create import labels_of
from ingest.verify.differences import Difference, DifferenceKind

__all__ = ["compare", "same_float32", "same_json"]

_F32 = struct.Struct("<f")
_BOX = struct.Struct("<4f")
_EPSILON = 2.0**-23
"""float32's relative precision: two coordinates closer than this are the same."""
_SHOWN = 5
"""Items a message lists before "and N more"."""
_MISSING = object()


def same_float32(a: float, b: float) -> bool:
    """True when ``a`` and ``b`` are the same number once stored as float32 (within one
    part in 2**23, so that a value stored by another client's rounding still matches)."""
    x = _F32.unpack(_F32.pack(a))[0]
    y = _F32.unpack(_F32.pack(b))[0]
    close: bool = abs(x - y) <= _EPSILON * max(abs(x), abs(y), 2.0**-126)
    return close


def _json_key(value: Any) -> Any:
    """A JSON value as a ``Struct`` holds it: numbers as floats, booleans apart from them."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, Mapping):
        return ("object", {k: _json_key(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return ("list", [_json_key(v) for v in value])
    return ("other", value)


def same_json(a: Any, b: Any) -> bool:
    """True when two JSON values are equal as a ``Struct`` stores them (``1`` and ``1.0``
    alike, ``true`` and ``1`` not)."""
    return bool(_json_key(a) == _json_key(b))


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:_SHOWN])
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return shown + more


def _concepts_text(pairs: Iterable[tuple[str, float]]) -> str:
    parts = [f"{cid}={value:g}" for cid, value in sorted(pairs)]
    return "{" + ", ".join(parts) + "}"


def _region(row: Row) -> str:
    """The row's region in words."""
    if row.coords is not None:
        return "box (" + ", ".join(f"{v:g}" for v in row.coords) + ")"
    points = len(row.polygon or ()) // 2
    return f"polygon of {points} points"


def _region_problem(row: Row, region: Any) -> str:
    """Why the stored region differs from the row's (empty when it does not)."""
    info = region.region_info
    if row.coords is not None:
        if not info.HasField("bounding_box"):
            return f"the {_region(row)} is another kind of region in the app"
        bb = info.bounding_box
        held = (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row)
        if _BOX.unpack(_BOX.pack(*row.coords)) == held or all(
            same_float32(a, b) for a, b in zip(row.coords, held, strict=True)
        ):
            return ""
        where = ", ".join(f"{v:.6g}" for v in held)
        return f"the {_region(row)} is at ({where}) in the app"
    polygon = row.polygon or ()
    if not info.HasField("polygon"):
        return f"the {_region(row)} is another kind of region in the app"
    points = info.polygon.points
    if len(points) * 2 == len(polygon) and all(
        same_float32(p.col, polygon[2 * i]) and same_float32(p.row, polygon[2 * i + 1])
        for i, p in enumerate(points)
    ):
        return ""
    return f"the {_region(row)} has other points in the app ({len(points)} points)"


def _row_concepts(row: Row) -> set[tuple[str, float]]:
    return {(c, 1.0) for c in row.pos_concepts} | {(c, 0.0) for c in row.neg_concepts}


def _held_concepts(ann: Any) -> set[tuple[str, float]]:
    data = ann.data
    held = {(c.id, float(c.value)) for c in data.concepts}
    for region in data.regions:
        held.update((c.id, float(c.value)) for c in region.data.concepts)
    return held


def _annotation_problems(row: Row, ann: Any) -> list[tuple[DifferenceKind, str]]:
    """What differs between the row's region and the stored annotation of its id."""
    out: list[tuple[DifferenceKind, str]] = []
    regions = ann.data.regions
    if len(regions) != 1:
        out.append(
            (
                DifferenceKind.REGION_MOVED,
                f"the {_region(row)} has {len(regions)} regions in the app",
            )
        )
    else:
        problem = _region_problem(row, regions[0])
        if problem:
            out.append((DifferenceKind.REGION_MOVED, problem))
    want, held = _row_concepts(row), _held_concepts(ann)
    if want != held:
        out.append(
            (
                DifferenceKind.REGION_CONCEPTS,
                f"the {_region(row)} has concepts {_concepts_text(held)} in the app, "
                f"{_concepts_text(want)} in the data",
            )
        )
    if not row.info and not ann.annotation_info.fields:
        return out  # neither has annotation_info (the common case)
    info = json_format.MessageToDict(ann.annotation_info)
    if not same_json(info, row.info or {}):
        out.append(
            (
                DifferenceKind.ANNOTATION_INFO,
                f"the {_region(row)} has annotation_info {_show(info)} in the app, "
                f"{_show(row.info or {})} in the data",
            )
        )
    return out


def _input_problems(
    concepts: Mapping[str, tuple[float, str]], metadata: Mapping[str, Any], stored: Any
) -> tuple[list[tuple[DifferenceKind, str]], list[tuple[DifferenceKind, str]]]:
    """What the input lacks or holds otherwise, and what it holds besides (extras)."""
    problems: list[tuple[DifferenceKind, str]] = []
    extras: list[tuple[DifferenceKind, str]] = []
    held = {c.id: float(c.value) for c in stored.data.concepts}
    lacking = [cid for cid, (value, _) in concepts.items() if held.get(cid) != value]
    if lacking:
        problems.append(
            (
                DifferenceKind.INPUT_CONCEPTS,
                f"the input lacks concept(s) {_names(lacking)} (or holds them with another value)",
            )
        )
    besides = [cid for cid in held if cid not in concepts]
    if besides:
        extras.append(
            (DifferenceKind.EXTRA_CONCEPTS, f"the input holds concept(s) {_names(besides)}")
        )
    stored_meta = json_format.MessageToDict(stored.data.metadata)
    other = [
        key
        for key, value in metadata.items()
        if not same_json(stored_meta.get(key, _MISSING), value)
    ]
    if other:
        first = other[0]
        held_value = stored_meta.get(first, _MISSING)
        shown = "missing" if held_value is _MISSING else _show(held_value)
        problems.append(
            (
                DifferenceKind.INPUT_METADATA,
                f"the input's metadata differs for key(s) {_names(other)} ({first!r} is "
                f"{shown} in the app, {_show(metadata[first])} in the data)",
            )
        )
    keys = [key for key in stored_meta if key not in metadata]
    if keys:
        extras.append(
            (DifferenceKind.EXTRA_METADATA, f"the input's metadata has key(s) {_names(keys)}")
        )
    return problems, extras


def compare(image: Image, stored: Any | None, annotations: Sequence[Any]) -> list[Difference]:
    """The differences between ``image``'s rows and the app's input ``stored`` (None when
    the app has none) with its ``annotations``: one per differing row, then the extras."""
    rows = image.rows
    first = rows[0].line
    if stored is None:
        return _all_rows(rows, DifferenceKind.INPUT_MISSING, "the input is not in the app")
    if stored.status.code != sc.INPUT_DOWNLOAD_SUCCESS:
        why = f"the input is not processed successfully: {describe(stored.status)}"
        return _all_rows(rows, DifferenceKind.INPUT_NOT_PROCESSED, why)
    concepts, metadata = labels_of(image)
    of_input, extras = _input_problems(concepts, metadata, stored)
    by_id = {ann.id: ann for ann in annotations}
    out: list[Difference] = []
    for row in rows:
        problems = list(of_input)
        if row.annotation_id:
            ann = by_id.get(row.annotation_id)
            if ann is None:
                problems.append(
                    (DifferenceKind.REGION_MISSING, f"the {_region(row)} is not in the app")
                )
            else:
                problems += _annotation_problems(row, ann)
        if problems:
            out.append(
                Difference(
                    row.line,
                    tuple(dict.fromkeys(kind for kind, _ in problems)),
                    row.input_id,
                    row.annotation_id,
                    "; ".join(text for _, text in problems),
                    row.raw,
                )
            )
    iid = image.input_id
    out += [Difference(first, (kind,), iid, "", text) for kind, text in extras]
    ours = {row.annotation_id for row in rows if row.annotation_id}
    given = {(cid, value) for cid, (value, _) in concepts.items()}
    for ann in annotations:
        if ann.id in ours:
            continue
        if ann.data.regions:
            what = f"an annotation with {len(ann.data.regions)} region(s)"
        else:
            named = _held_concepts(ann) - given
            if not named:
                continue  # the input's own annotation, or labels the rows give the input
            what = f"an annotation of the whole image naming {_concepts_text(named)}"
        concepts_held = _concepts_text(_held_concepts(ann))
        out.append(
            Difference(
                first,
                (DifferenceKind.EXTRA_ANNOTATION,),
                iid,
                ann.id,
                f"{what} the data does not have (concepts {concepts_held})",
                NO_CELLS,
            )
        )
    return out


def _all_rows(rows: list[Row], kind: DifferenceKind, error: str) -> list[Difference]:
    return [
        Difference(row.line, (kind,), row.input_id, row.annotation_id, error, row.raw)
        for row in rows
    ]
