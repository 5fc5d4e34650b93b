"""The checks of single cells and of the header, apart from the row loop that uses them.

Each returns what is wrong in words a user can act on ("" or a value when nothing is),
so :class:`~ingest.source.validate.Validator` stays one function over a row. Limits
(documented in :mod:`ingest.source`): :data:`MAX_CONCEPTS` concepts per cell,
:data:`MAX_METADATA_CHARS` characters of metadata JSON, local files of at most
:data:`MAX_FILE_BYTES`, polygons of 3 to :data:`MAX_POLYGON_POINTS` points.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ingest.errors import MissingColumnError, SourceError
from ingest.model import InvalidRow

from .columns import BOX_COLUMNS, IMAGE_COLUMNS, OPTIONAL_COLUMNS, READ_COLUMNS, near_miss

__all__ = [
    "BOX_COLUMNS",
    "MAX_CONCEPTS",
    "MAX_FILE_BYTES",
    "MAX_METADATA_CHARS",
    "MAX_POLYGON_POINTS",
    "OPTIONAL_COLUMNS",
    "SEED_COLUMNS",
    "box_problem",
    "check_header",
    "concept_id",
    "format_polygon",
    "id_problem",
    "parse_geo",
    "parse_object",
    "parse_polygon",
    "show",
    "url_problem",
]

SEED_COLUMNS = ("url", *BOX_COLUMNS, "pos_concepts", "neg_concepts", "metadata")
"""The columns of the seed article's CSV, in its order (what the failures file and
generated data use)."""


MAX_CONCEPTS = 200
"""Concepts per cell, after dropping empty pieces and duplicates."""


MAX_METADATA_CHARS = 64 * 1024
"""Characters of metadata JSON per row (64 KiB)."""


MAX_FILE_BYTES = 20 * 1024 * 1024
"""Largest local image (``file`` column) Clarifai accepts in one request."""


MAX_POLYGON_POINTS = 10_000
"""Points per polygon."""


_NOT_ID = re.compile(r"[^a-z0-9_-]")


def concept_id(name: str) -> str:
    """The concept id of a class name, as Clarifai's COCO loader makes it.

    Lower case, every character outside ``a-z0-9_-`` becomes ``-``:
    ``"Traffic Light"`` -> ``"traffic-light"``. Empty for an empty name.
    """
    return _NOT_ID.sub("-", name.strip().lower())


def format_polygon(points: Sequence[float]) -> str:
    """A ``polygon`` cell from flat ``x, y`` pairs (each as Python writes the float)."""
    return " ".join(repr(float(v)) for v in points)


ID_RULE = "ids may use only A-Z, a-z, 0-9, '_' and '-', 1 to 128 characters"


BOX_RULE = "box values are numbers in [0, 1]"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# strict=False: control characters (a quoted newline) may appear inside JSON strings.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, strict=False)


def show(value: str, limit: int = 40) -> str:
    """``value`` quoted for a message, shortened when long."""
    if len(value) > limit:
        value = value[: limit - 3] + "..."
    return repr(value)


def id_problem(value: str) -> str:
    """Why ``value`` is not a valid Clarifai id (for a message)."""
    if len(value) > 128:
        return f"is {len(value)} characters long; {ID_RULE}"
    for ch in value:
        if not (ch.isascii() and (ch.isalnum() or ch in "_-")):
            name = "a space" if ch == " " else f"{ch!r} (U+{ord(ch):04X})"
            return f"contains {name}; {ID_RULE}"
    return f"is not a valid id; {ID_RULE}"  # pragma: no cover - is_valid_id said no


def check_header(columns: Sequence[str], path: str | None) -> tuple[str, dict[str, int]]:
    """Check the header; return the image column (``url`` or ``file``) and name -> index.

    The box columns are all four or none (a header without any is a classification set:
    every row is image-level). Raises :class:`MissingColumnError` for a missing column
    (the image's, or a box column beside others; saying which header cell looks meant as
    it, if one does) and :class:`SourceError` for duplicate names, both
    ``url`` and ``file``, or a cell that is a near miss of a column ingest reads
    (:func:`~ingest.source.columns.near_miss`: "column 'pos_concept' is not one ingest
    reads; did you mean 'pos_concepts'?"). Other cells ingest does not read are no
    error here: :func:`~ingest.source.columns.unknown_columns` lists them.
    """
    where = f"{path}: " if path else ""
    index: dict[str, int] = {}
    for i, name in enumerate(columns):
        if name in index:
            if not name:
                raise SourceError(
                    f"{where}line 1: columns {index[name] + 1} and {i + 1} of the header have "
                    "no name; name them or remove the extra commas"
                )
            raise SourceError(
                f"{where}line 1: column {name!r} appears twice in the header "
                f"(columns {index[name] + 1} and {i + 1}); rename or remove one"
            )
        index[name] = i
    if "url" in index and "file" in index:
        raise SourceError(f"{where}line 1: the header has both 'url' and 'file'; use one per file")
    has_image = "url" in index or "file" in index
    # what a header cell ingest does not read may be meant as: a column ingest reads that
    # the header lacks (with an image column, not the other one)
    lacking = [
        n
        for n in (*IMAGE_COLUMNS, *BOX_COLUMNS, *OPTIONAL_COLUMNS)
        if n not in index and not (has_image and n in IMAGE_COLUMNS)
    ]
    meant = {cell: near_miss(cell, lacking) for cell in columns if cell not in READ_COLUMNS}
    image = "file" if "file" in index else "url"
    if not has_image:  # a near miss of either names the missing one
        image = next((n for n in meant.values() if n in IMAGE_COLUMNS), None) or image
    # the box columns: all four, or none at all (a classification set: image-level rows)
    boxes = [n for n in BOX_COLUMNS if n in index]
    for name in (image, *(BOX_COLUMNS if boxes else ())):
        if name not in index:
            cell = next((c for c, n in meant.items() if n == name), None)
            hint = "" if cell is None else f"{_not_read(cell)}; did you mean {name!r}?"
            if not hint and name == image and "input" in index:
                hint = (
                    "an 'input' column is the official SDK's CSV's: read it with --format sdk-csv"
                )
            raise MissingColumnError(name, path=path, hint=hint)
    for cell, known in meant.items():
        if known is not None:
            raise SourceError(f"{where}line 1: {_not_read(cell)}; did you mean {known!r}?")
    return image, index


def _not_read(cell: str) -> str:
    return f"column {cell!r} is not one ingest reads"


def url_problem(url: str) -> str:
    """Why ``url`` is not an http(s) URL ("" when it is one, in any letter case)."""
    scheme, sep, rest = url.partition(":")
    if not sep or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return f"the url {show(url)} has no scheme; it must start with http:// or https://"
    if scheme.lower() not in ("http", "https"):
        return f"the url scheme {scheme!r} is not allowed; use http:// or https://"
    if not rest.startswith("//") or not rest[2:].split("/", 1)[0]:
        return f"the url {show(url)} has no host; expected http(s)://host/path"
    return ""


def box_problem(line: int, cells: tuple[str, str, str, str], raw: Mapping[str, str]) -> InvalidRow:
    values: list[float] = []
    for name, cell in zip(BOX_COLUMNS, cells, strict=True):
        text = cell.strip()
        if not text:
            return InvalidRow(
                line,
                name,
                f"{name} is empty but other box columns are set; "
                "give all four box values or leave all four empty",
                raw,
            )
        try:
            v = float(text)
        except ValueError:
            return InvalidRow(
                line,
                name,
                f"{name} is not a number: {show(text)}; {BOX_RULE}",
                raw,
            )
        if math.isnan(v):
            return InvalidRow(line, name, f"{name} is NaN; {BOX_RULE}", raw)
        if math.isinf(v):
            return InvalidRow(line, name, f"{name} is infinite; {BOX_RULE}", raw)
        if v < 0.0:
            return InvalidRow(line, name, f"{name} is {text}, below 0; {BOX_RULE}", raw)
        if v > 1.0:
            return InvalidRow(line, name, f"{name} is {text}, above 1; {BOX_RULE}", raw)
        values.append(v)
    left, top, right, bottom = values
    if left == right:
        return InvalidRow(
            line, "right_col", f"right_col equals left_col ({left}): the box has no width", raw
        )
    if left > right:
        return InvalidRow(
            line, "right_col", f"right_col ({right}) must be greater than left_col ({left})", raw
        )
    if top == bottom:
        return InvalidRow(
            line, "bottom_row", f"bottom_row equals top_row ({top}): the box has no height", raw
        )
    return InvalidRow(
        line, "bottom_row", f"bottom_row ({bottom}) must be greater than top_row ({top})", raw
    )


def parse_polygon(text: str) -> tuple[float, ...] | str:
    """The points of a ``polygon`` cell, or why they are invalid."""
    pieces = text.split()
    try:
        values = tuple(float(p) for p in pieces)
    except ValueError:
        bad = next(p for p in pieces if not _is_float(p))
        return f"polygon value {show(bad)} is not a number; {POLYGON_RULE}"
    if len(values) % 2:
        return f"the polygon has {len(values)} numbers, an odd count; {POLYGON_RULE}"
    points = len(values) // 2
    if points < 3:
        return f"the polygon has {points} point(s); at least 3 are needed"
    if points > MAX_POLYGON_POINTS:
        return f"the polygon has {points:,} points; at most {MAX_POLYGON_POINTS:,} are allowed"
    for i, v in enumerate(values):
        if not 0.0 <= v <= 1.0:  # False for NaN
            what = "x" if i % 2 == 0 else "y"
            return (
                f"point {i // 2 + 1} of the polygon has {what} = {pieces[i]}, "
                f"outside [0, 1]; {POLYGON_RULE}"
            )
    xs, ys = values[0::2], values[1::2]
    area2 = 0.0
    for i in range(points):
        j = (i + 1) % points
        area2 += xs[i] * ys[j] - xs[j] * ys[i]
    if area2 == 0.0:
        return "the polygon has no area (its points are on one line)"
    return values


GEO_RULE = "a geo point is 'longitude,latitude' in degrees (the SDK's geopoints cell)"


def parse_geo(text: str) -> tuple[float, float] | str:
    """The (longitude, latitude) of a ``geo`` cell, or why it is invalid."""
    pieces = [p.strip() for p in text.split(",")]
    if len(pieces) != 2:
        return f"geo {show(text)} has {len(pieces)} value(s); {GEO_RULE}"
    values: list[float] = []
    for what, piece, limit in zip(("longitude", "latitude"), pieces, (180.0, 90.0), strict=True):
        try:
            v = float(piece)
        except ValueError:
            return f"the {what} {show(piece)} is not a number; {GEO_RULE}"
        if not -limit <= v <= limit:  # False for NaN
            return f"the {what} {piece} is outside [-{limit:g}, {limit:g}]; {GEO_RULE}"
        values.append(v)
    return values[0], values[1]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


POLYGON_RULE = "a polygon is normalised x y pairs in [0, 1] separated by spaces"


# The fast path (five times quicker): strict JSON, which the standard decoder accepts
# alike; whatever it refuses (control characters in strings, lone surrogates, bad
# JSON) goes to the standard decoder, whose verdict and words are the ones reported.
_fast_decode = msgspec.json.Decoder().decode


def parse_object(text: str, what: str = "metadata") -> dict[str, Any] | str:
    """The metadata (or ``what``) object, or why it is invalid."""
    if len(text) > MAX_METADATA_CHARS:
        return (
            f"{what} is {len(text):,} characters; at most {MAX_METADATA_CHARS:,} "
            "(64 KiB) of JSON are allowed"
        )
    try:
        value = _fast_decode(text)
    except (msgspec.DecodeError, ValueError, RecursionError):
        pass  # the standard decoder says why (or accepts what the fast one does not)
    else:
        if isinstance(value, dict):
            return value
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        msg = exc.msg.removesuffix(" at")
        return f"{what} is not valid JSON: {msg} at character {exc.pos + 1}"
    except ValueError as exc:
        return f"{what} is not valid JSON: {exc}"
    except RecursionError:
        return f"{what} is nested too deeply"
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(value), "a number"
        )
        return f"{what} must be a JSON object ({{...}}), not {kind}"
    return value
