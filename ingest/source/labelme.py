"""LabelMe JSON: a folder of per-image ``.json`` files (or one such file), as LabelMe saves them.

* The folder's ``.json`` files are read one at a time, in name order, sub-folders too
  (depth first; folders whose name starts with ``.`` are not entered). A ``.json`` file
  that is not LabelMe's (no ``shapes`` list) is a warning and is not read. One LabelMe file
  can also be given by its path.
* **The image**: the file ``imagePath`` names, relative to the JSON file's folder (``\\``
  read as ``/``, as LabelMe reads it), when it exists and has the size the JSON gives
  (``imageWidth`` x ``imageHeight``); otherwise the image embedded in the JSON
  (``imageData``, base64), which is written once to ``.ingest-imagedata/<json
  name>.<png|jpg...>`` beside the JSON file and uploaded from there (so that its rows, the
  failures file and a re-run name a file); otherwise every row of the JSON file is invalid,
  saying what was looked for. LabelMe itself shows the embedded image when there is one:
  it is the image the shapes were drawn on, so an ``imagePath`` file of another size
  gives way to it.
* **Shapes** (``shapes``, each with ``label``, ``points``, ``shape_type``, ``group_id``,
  ``flags``, ``description``): ``rectangle`` (two corners, in either order) is a box;
  ``polygon`` (also a shape without ``shape_type``, as older LabelMe wrote),
  ``oriented_rectangle`` (four corners) and ``circle`` (centre and a point on the circle:
  the polygon ``labelme2coco`` makes of it, cut at the image's edge) are outlines, which
  follow ``--regions`` (:mod:`.shapes`). ``line``, ``linestrip``, ``point``, ``points`` and
  ``mask`` shapes, and shapes labelled ``__ignore__`` (LabelMe's mark for a region its
  converters leave out), are not uploaded: each is a warning naming the file and the
  shape's number (1 for the first), given when the dataset is opened (``--strict``
  refuses them). A shape of no known type is a warning too.
* **Groups**: shapes sharing a ``group_id`` stay one annotation each (Clarifai holds one
  region per annotation), each with the ``group_id`` in its ``annotation_info``;
  ``labelme2coco`` merges them into one object instead - convert with it and upload the
  COCO file to have that.
* ``annotation_info``: ``shape_type``, and ``group_id``, ``flags`` and ``description``
  when the shape has them. The input's metadata: the image's ``flags`` (``{"flags":
  {"cat": true, "dog": false}}``); each image flag that is true is also an image-level
  concept (``__ignore__`` aside). Labels and flag names become concept ids as class names
  do (``Traffic Light`` -> ``traffic-light``, the name kept).
* A top-level key or a shape key ingest does not read is a warning (once per key), or an
  error with a "did you mean" when it is a near miss of one the file lacks (``imagepath``).
* Positions: each JSON file takes one position per image-level concept (at least one: the
  image's own row, used when no shape gives a row) and two per shape (its box's and its
  polygon's), in file order, whatever ``--regions`` and whether the shape is uploaded.
* Opening reads every file once (labels, positions, warnings, the journal's
  fingerprint), so that two labels making one concept id, or a file that is not JSON,
  stop the upload before anything is sent.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import math
import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ijson
import msgspec

from ingest.errors import SourceError

from .cells import concept_id
from .dataset import Cells, DatasetSource, Item, concept_map, dump, relative
from .fingerprint import FileList
from .imagesize import image_size
from .shapes import Repeats, ShapeRows, Skipped, Unknown, ellipse_bounds, ellipse_points

__all__ = ["IMAGEDATA_FOLDER", "LabelmeSource"]

IMAGEDATA_FOLDER = ".ingest-imagedata"
"""Where an embedded image (``imageData``) is written, beside its JSON file."""

IGNORE = "__ignore__"
"""LabelMe's label (and flag) for what its converters leave out."""

_TOP_KEYS = frozenset(
    {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
)
_SHAPE_KEYS = frozenset(
    {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}
)
_BOXES = frozenset({"rectangle"})
_OUTLINES = frozenset({"polygon", "oriented_rectangle", "circle"})
_NOT_STORED = {
    "line": "a line",
    "linestrip": "a line strip",
    "point": "a point",
    "points": "points",
    "mask": "a mask",
}
_POINTS = {"rectangle": 2, "oriented_rectangle": 4, "circle": 2}
_BYTE = re.compile(r"\(byte (\d+)\)")
_OTHER_MARKERS = ("Annotations", "annotations.xml", "data.yaml", "data.yml")
"""What marks a folder as another reader's (VOC, CVAT, YOLO with ``images/`` and
``labels/`` besides): the factory asks LabelMe first (for a ``.json`` file, before COCO),
so such a folder is not listed to look for LabelMe files."""


class LabelmeSource(DatasetSource):
    """The rows of a folder of LabelMe files, or of one (see the module docs)."""

    format_name = "labelme"
    describe = "a LabelMe folder (.json files with shapes)"
    options_read = frozenset({"regions"})
    _jsons: list[str]
    """The LabelMe files, relative to ``_root`` (posix), in reading order."""
    _root: Path
    _fingerprint: dict[str, Any]
    _cells: Cells

    @staticmethod
    def recognises(path: Path) -> bool:
        """A LabelMe ``.json`` file, or a folder whose first ``.json`` files (by name)
        include one; a folder without ``.json`` files: the same of its first sub-folders.
        A folder with another reader's marker is not LabelMe's."""
        if not path.is_dir():
            return _is_json(path.name) and _is_labelme(path)
        if any((path / marker).exists() for marker in _OTHER_MARKERS) or (
            (path / "images").is_dir() and (path / "labels").is_dir()
        ):
            return False  # another reader's folder (YOLO, VOC, CVAT): not listed here
        try:
            entries = list(os.scandir(path))
            names = [e.name for e in entries if _is_json(e.name) and e.is_file()]
            if names:
                return any(_is_labelme(path / n) for n in heapq.nsmallest(8, names))
            subdirs = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
            for sub in heapq.nsmallest(8, subdirs):
                names = [e.name for e in os.scandir(path / sub) if _is_json(e.name)]
                if any(_is_labelme(path / sub / n) for n in heapq.nsmallest(8, names)):
                    return True
        except OSError:
            return False
        return False

    def _prepare(self) -> None:
        assert self.path is not None
        p = self.path
        if p.is_dir():
            self._root = p
            found = list(_walk(p))
        else:
            if not _is_json(p.name):
                raise SourceError(f"{p}: a LabelMe dataset is a folder of .json files, or one")
            self._root = p.parent
            found = [p.name]
        fail_dir = p.parent.resolve()
        prefix = _prefix(self._root, fail_dir)
        stats = self.stats
        skipped = Skipped(stats)
        unknown = Unknown(stats)
        names: dict[str, None] = {}
        files = FileList()
        roots = {p.parent: fail_dir}
        self._jsons = []
        self._repeats = Repeats()
        rows = embedded = ignored = 0
        for rel in found:
            json_path = self._root / rel
            doc = _read(json_path)
            shown = f"{prefix}{rel}"
            if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
                if p.is_file():
                    raise SourceError(f"{p}: not a LabelMe file (no 'shapes' list)")
                stats.warn(f"{shown}: not a LabelMe file (no 'shapes' list); not read")
                continue
            self._jsons.append(rel)
            files.add(json_path)
            unknown.check(shown, "key", doc, _TOP_KEYS)
            flags = doc.get("flags")
            if flags is not None and not isinstance(flags, dict):
                stats.warn(f"{shown}: 'flags' is not an object; not uploaded")
            elif flags and flags.get(IGNORE) is True:
                ignored += 1
            concepts = _flag_concepts(doc)
            names.update(dict.fromkeys(concepts))
            for k, shape in enumerate(doc["shapes"], start=1):
                where = f"{shown} shape {k}"
                if not isinstance(shape, dict):
                    continue  # an invalid row when read
                unknown.check(where, "shape key", shape, _SHAPE_KEYS)
                kind, why = _kind(shape)
                if kind == "skip":
                    skipped.add(where, why)
                elif kind != "invalid":
                    names.setdefault(shape["label"].strip(), None)
            rows += max(1, len(concepts)) + 2 * len(doc["shapes"])
            found_image = _Found.of(json_path, doc, sized=False)
            if found_image.path is not None:
                files.add(found_image.path)
                folder = found_image.path.parent
                if folder not in roots:  # the folders images are in: a few, resolved once
                    roots[folder] = folder.resolve()
                self._repeats.add(str(found_image.path))
            elif found_image.data is not None:
                embedded += 1
        skipped.finish()
        self._repeats.seal()
        if embedded:
            stats.note(
                f"{embedded:,} image(s) are uploaded from the image embedded in their JSON "
                f"file (imageData), written to {IMAGEDATA_FOLDER}/ beside it"
            )
        if ignored:
            stats.note(
                f"{ignored:,} image(s) have the flag {IGNORE} set: uploaded, their flags kept "
                "in their metadata"
            )
        self._fingerprint = files.fingerprint(self.format_name)
        stats.update(rows_total=rows, images_total=len(self._jsons))
        self._names = concept_map(names, str(p))
        self.base_dir = Path(os.path.commonpath(list(roots.values())))
        if self.base_dir != fail_dir:
            stats.note(
                f"image paths in the failures file are relative to {self.base_dir}: "
                "write it there (--failures) to upload it again"
            )
        self._cells = Cells("file", self._names)
        self.columns = self._cells.columns

    def fingerprint(self) -> dict[str, Any]:
        """Every LabelMe file and the image file each names, as the opening pass found them."""
        return self._fingerprint

    def _items(self) -> Generator[list[Item], None, None]:
        line = 2
        prefix = _prefix(self._root, self.base_dir)
        for rel in self._jsons:
            rows, line = self._file_rows(self._root / rel, f"{prefix}{rel}", line)
            yield rows

    def _file_rows(self, json_path: Path, shown: str, line: int) -> tuple[list[Item], int]:
        """The rows of one LabelMe file (``shown`` in messages) from position ``line``, and
        the next free one."""
        root = self.base_dir
        doc = _read(json_path)
        shapes = doc.get("shapes") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or not isinstance(shapes, list):
            # changed since the opening pass: no longer LabelMe's; its one row says so
            reason = f"{shown}: not a LabelMe file (no 'shapes' list)"
            return [(line, self._cells.make(relative(json_path, root)), "", reason)], line + 1
        found = _Found.of(json_path, doc)
        image, size, problem = found.resolve(shown, root)
        if found.path is not None and self._repeats.again(str(found.path)):
            problem = f"{shown}: an earlier LabelMe file names the same image ({image})"
        flags = doc.get("flags")
        metadata = dump({"flags": flags}) if isinstance(flags, dict) and flags else ""
        make = partial(self._cells.make, image, metadata=metadata)
        concepts = _flag_concepts(doc)
        slots = max(1, len(concepts))
        rows: list[Item] = []
        shape_rows = ShapeRows(self.options, make)
        first = line + slots
        for k, shape in enumerate(shapes, start=1):
            rows += self._shape_rows(
                shape_rows, first + 2 * (k - 1), f"{shown} shape {k}", shape, size, problem
            )
        # the image-level rows: one per true flag, or the image's own when no shape gave one
        for i, name in enumerate(concepts):
            rows.insert(
                i, (line + i, make(concept=concept_id(name)), "file" if problem else "", problem)
            )
        if not rows:
            rows.append((line, make(), "file" if problem else "", problem))
        return rows, first + 2 * len(shapes)

    def _shape_rows(
        self,
        rows: ShapeRows,
        line: int,
        where: str,
        shape: Any,
        size: tuple[float, float] | None,
        problem: str,
    ) -> list[Item]:
        if not isinstance(shape, dict):
            return [rows.invalid(line, "", f"{where}: a shape must be an object", "", "")]
        kind, why = _kind(shape)
        if kind == "skip":
            return []  # warned at opening
        label = shape.get("label")
        concept = concept_id(label) if isinstance(label, str) else ""
        info = dump(_info(shape))
        if kind == "invalid":
            box = shape.get("shape_type") in _BOXES
            column = "pos_concepts" if "label" in why else "left_col" if box else "polygon"
            return [rows.invalid(line, column, f"{where}: {why}", concept, info)]
        if problem:
            return [rows.invalid(line, "file", problem, concept, info)]
        if size is None:
            why = (
                "the image's size is unknown (no imageWidth and imageHeight, and the image "
                "cannot be read)"
            )
            return [rows.invalid(line, "left_col", f"{where}: {why}", concept, info)]
        points = [v for xy in shape["points"] for v in xy]
        shape_type = kind
        if shape_type == "rectangle":
            xs, ys = sorted(points[0::2]), sorted(points[1::2])
            return rows.box(line, where, (xs[0], ys[0], xs[1], ys[1]), size, concept, info)
        if shape_type == "circle":
            cx, cy, ex, ey = points
            radius = math.hypot(ex - cx, ey - cy)
            if radius == 0.0:
                why = "the circle has no radius (its two points are one)"
                return [rows.invalid(line, "polygon", f"{where}: {why}", concept, info)]
            circle = ellipse_points(cx, cy, radius, radius)
            bounds = ellipse_bounds(cx, cy, radius, radius)
            return rows.outline(line, where, circle, size, concept, info, clip=True, bounds=bounds)
        return rows.outline(line, where, points, size, concept, info)


@dataclass(slots=True)
class _Found:
    """Where a LabelMe file's image is: the file ``imagePath`` names (``path``, when it is
    the one to upload), else the embedded image (``data``); ``size`` as the JSON gives it;
    ``problem`` when neither will do."""

    json_path: Path
    path: Path | None
    data: str | None
    size: tuple[int, int] | None
    problem: str

    @classmethod
    def of(cls, json_path: Path, doc: dict[str, Any], *, sized: bool = True) -> _Found:
        """Where the image of ``doc`` is; ``sized=False``: the file ``imagePath`` names is
        taken without reading its size (the opening pass: which folders hold images)."""
        width, height = _positive(doc.get("imageWidth")), _positive(doc.get("imageHeight"))
        declared = (width, height) if width and height else None
        named = doc.get("imagePath")
        data = doc.get("imageData")
        data = data if isinstance(data, str) and data else None
        candidate: Path | None = None
        target = json_path.parent
        if isinstance(named, str) and named:
            target = json_path.parent / named.replace("\\", "/")
            if target.is_file() and not _same_file(target, json_path):
                candidate = target
        if candidate is not None and not sized:
            return cls(json_path, candidate, None, declared, "")
        if candidate is not None:
            got = image_size(candidate)
            if declared is None or got is None or got == declared:
                return cls(json_path, candidate, None, declared or got, "")
        if data is not None:
            return cls(json_path, None, data, declared, "")
        if candidate is not None:
            got = image_size(candidate)
            assert got is not None and declared is not None
            problem = (
                f"the image {candidate.name} is {got[0]}x{got[1]}, but the file says imageWidth "
                f"{declared[0]}, imageHeight {declared[1]}: its shapes were drawn on another "
                "image, and it embeds none (imageData)"
            )
        elif isinstance(named, str) and named:
            problem = (
                f"imagePath {named!r} names no image file ({target}), and the file embeds no "
                "image (imageData)"
            )
        else:
            problem = "the file names no image (imagePath) and embeds none (imageData)"
        return cls(json_path, None, None, declared, problem)

    def resolve(self, shown: str, root: Path) -> tuple[str, tuple[float, float] | None, str]:
        """The image's cell, its size, and the problem of the file's rows ("" if none);
        an embedded image is written out here."""
        if self.problem:
            return "", None, f"{shown}: {self.problem}"
        size = self.size
        if self.path is not None:
            return relative(self.path, root), size, ""
        assert self.data is not None
        try:
            raw = base64.b64decode(self.data)
        except (binascii.Error, ValueError):
            return "", None, f"{shown}: imageData is not valid base64"
        written = _write_embedded(self.json_path, raw)
        if isinstance(written, str):
            return "", None, f"{shown}: {written}"
        got = image_size(written)
        if size is not None and got is not None and got != size:
            return (
                relative(written, root),
                None,
                f"{shown}: the embedded image (imageData) is {got[0]}x{got[1]}, but the file "
                f"says imageWidth {size[0]}, imageHeight {size[1]}",
            )
        return relative(written, root), size or got, ""


def _write_embedded(json_path: Path, raw: bytes) -> Path | str:
    """Write an embedded image beside its JSON file (unless it is there already); its path,
    or why it cannot be written."""
    out = json_path.parent / IMAGEDATA_FOLDER / (json_path.stem + _suffix(raw))
    try:
        if out.is_file() and out.stat().st_size == len(raw) and out.read_bytes() == raw:
            return out
        out.parent.mkdir(exist_ok=True)
        part = out.with_name(out.name + ".part")
        part.write_bytes(raw)
        os.replace(part, out)
    except OSError as exc:
        return f"the embedded image (imageData) cannot be written to {out}: {exc.strerror or exc}"
    return out


def _suffix(raw: bytes) -> str:
    """The file name ending of image bytes, from their first bytes."""
    if raw.startswith(b"\x89PNG"):
        return ".png"
    if raw.startswith(b"\xff\xd8"):
        return ".jpg"
    if raw[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if raw.startswith(b"BM"):
        return ".bmp"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return ".webp"
    if raw[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    return ".img"


def _kind(shape: dict[str, Any]) -> tuple[str, str]:
    """What a shape becomes: its type (``rectangle``, ``polygon``, ``oriented_rectangle``,
    ``circle``), ``skip`` (not stored) or ``invalid``, and why."""
    shape_type = shape.get("shape_type") or "polygon"
    label = shape.get("label")
    if label == IGNORE:
        return "skip", f"the shape is labelled {IGNORE} (a region LabelMe's converters leave out)"
    if not isinstance(shape_type, str) or (
        shape_type not in _BOXES and shape_type not in _OUTLINES
    ):
        if shape_type in _NOT_STORED:
            return "skip", f"{_NOT_STORED[shape_type]} ({shape_type}) is not a box or a polygon"
        return "skip", f"the shape type {shape_type!r} is not one ingest reads"
    if not isinstance(label, str) or not label.strip():
        return "invalid", "the shape has no label"
    points = shape.get("points")
    if not isinstance(points, list) or not all(_is_xy(p) for p in points):
        return "invalid", "points must be a list of [x, y] numbers"
    need = _POINTS.get(shape_type)
    if need is not None and len(points) != need:
        return "invalid", f"a {shape_type} has {need} points, this one {len(points)}"
    return shape_type, ""


def _info(shape: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {"shape_type": shape.get("shape_type") or "polygon"}
    group = shape.get("group_id")
    if group is not None:
        info["group_id"] = group
    flags = shape.get("flags")
    if flags:
        info["flags"] = flags
    description = shape.get("description")
    if description:
        info["description"] = description
    return info


def _flag_concepts(doc: dict[str, Any]) -> list[str]:
    """The names of the image's flags that are true (``__ignore__`` aside)."""
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        return []
    return [k.strip() for k, v in flags.items() if v is True and k != IGNORE and k.strip()]


def _is_xy(point: Any) -> bool:
    return (
        isinstance(point, list)
        and len(point) == 2
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in point
        )
    )


def _positive(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if value > 0 and float(value).is_integer() else None


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` is the JSON file ``b`` itself (LabelMe's tutorial names it so)."""
    if not _is_json(a.name):
        return False
    try:
        return a.samefile(b)
    except OSError:
        return False


def _prefix(folder: Path, root: Path) -> str:
    """What goes before a path relative to ``folder`` to make it relative to ``root``."""
    rel = relative(folder, root)
    return "" if rel in ("", ".") else rel + "/"


def _is_json(name: str) -> bool:
    return name.lower().endswith(".json")


def _walk(root: Path) -> Iterator[str]:
    """The ``.json`` files under ``root`` (relative, posix), sorted by name, depth first;
    folders whose name starts with ``.`` are left out."""
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = root / rel if rel else root
        try:
            with os.scandir(folder) as listing:  # names only: the images beside are not kept
                entries = sorted(_listed(listing))
        except OSError as exc:
            raise SourceError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
        subdirs: list[str] = []
        for entry, is_dir in entries:
            name = f"{rel}/{entry}" if rel else entry
            if is_dir:
                subdirs.append(name)
            else:
                yield name
        stack.extend(reversed(subdirs))


def _listed(listing: Iterator[os.DirEntry[str]]) -> Iterator[tuple[str, bool]]:
    """(name, is a folder) of the ``.json`` files and the folders not starting with ``.``."""
    for e in listing:
        if e.is_dir():
            if not e.name.startswith("."):
                yield e.name, True
        elif _is_json(e.name):
            yield e.name, False


def _is_labelme(path: Path) -> bool:
    """True when the JSON object in ``path`` has LabelMe's keys (read up to the first
    telling key: ``shapes`` or ``imagePath``, against COCO's ``images``...)."""
    try:
        with open(path, "rb") as f:
            for n, (prefix, event, value) in enumerate(ijson.parse(f)):
                if n > 10_000:
                    return False
                if prefix == "" and event == "map_key":
                    if value in ("shapes", "imagePath"):
                        return True
                    if value in ("images", "annotations", "categories"):
                        return False
                elif prefix == "" and event not in ("start_map", "map_key"):
                    return False
    except (OSError, ijson.JSONError):
        return False
    return False


def _read(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        text = str(exc)
        at = _BYTE.search(text)
        if at is not None:
            lines = data.count(b"\n", 0, int(at.group(1))) + 1
            text = f"{text[: at.start()].rstrip()} at line {lines}"
        raise SourceError(f"{path}: not valid JSON: {text}") from None
