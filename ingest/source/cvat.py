"""CVAT for images 1.1: one XML file (``annotations.xml`` in CVAT's export), and its images.

* The dataset is the XML file, or a folder holding ``annotations.xml``. The file is read
  with :func:`xml.etree.ElementTree.iterparse`, one ``<image>`` at a time (each freed once
  read), so memory stays flat however large the file. A ``<track>`` (CVAT for video) or a
  root element other than ``<annotations>`` refuses the file.
* ``<meta>`` gives the labels' attributes and their input types (a ``checkbox`` value
  becomes true or false, a ``number`` a number, the rest text) and, for a task, its
  subset; a project's export gives each image its ``subset``.
* **The image** of ``<image name="...">``: ``images/<subset>/<name>``, else
  ``images/<name>``, beside the XML (CVAT's export), else ``<name>`` beside the XML;
  ``--images DIR`` looks in ``DIR/<subset>/<name>`` and ``DIR/<name>`` instead. Its size is
  the element's ``width`` and ``height`` (else read from the file).
* **Shapes** (children of ``<image>``): ``<box xtl ytl xbr ybr>`` is a box, whatever
  ``--regions``; a box with a ``rotation`` is the polygon of its corners, an ``<ellipse cx
  cy rx ry>`` the polygon of its curve (both cut at the image's edge), and ``<polygon
  points="x,y;x,y...">`` a polygon: these follow ``--regions`` (:mod:`.shapes`). ``<tag>``
  is an image-level concept (its ``source``, ``group_id`` and attributes go to the input's
  metadata: ``{"tags": {"good_frame": {"source": "manual"}}}``).
  ``<polyline>``, ``<points>``, ``<cuboid>``, ``<mask>`` and ``<skeleton>``, a shape marked
  ``outside="1"`` (not visible), and any element ingest does not know are not uploaded:
  each is a warning naming the image and the shape's number (1 for the first child of the
  ``<image>``), given when the file is opened (``--strict`` refuses them).
* ``annotation_info``: ``shape_type`` (``box``, ``polygon``, ``ellipse``), ``occluded``,
  ``z_order``, ``source``, ``group_id``, ``track_id`` and ``rotation`` when given, and
  ``attributes`` (``{"a1": true, "a2": "v3"}``) from the shape's ``<attribute name>``
  elements. Shapes sharing a ``group_id`` stay one annotation each, the group kept there.
* The input's metadata: ``cvat_image_id``, ``split`` (the subset) and ``cvat_task_id`` when
  the export gives them. ``--split NAME`` reads one subset; ``--dataset-per-split`` puts
  each input into the dataset of its subset.
* An XML attribute of an ``<image>`` or a shape that ingest does not read is a warning
  (once per name), or an error with a "did you mean" when it is a near miss of one the
  element lacks (``xbt`` for ``xbr``). Two ``<image>`` elements naming one file: the
  second's rows are invalid.
* Positions: each ``<image>`` takes one position per ``<tag>`` (at least one: the image's
  own row, used when no shape gives a row) and two per other child (its box's and its
  polygon's), in file order, whatever ``--regions``, ``--split`` and whether the shape is
  uploaded.
* Opening reads the file once (labels, positions, warnings, the journal's fingerprint),
  so two labels making one concept id, or malformed XML, stop the upload before anything
  is sent.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ingest.errors import SourceError

from .cells import concept_id
from .dataset import Cells, DatasetSource, Item, concept_map, dump, relative
from .fingerprint import FileList
from .imagesize import image_size
from .shapes import (
    Repeats,
    ShapeRows,
    Skipped,
    Unknown,
    ellipse_bounds,
    ellipse_points,
    rotated_box_points,
)

__all__ = ["CvatSource"]

ANNOTATIONS = "annotations.xml"
"""The XML file of CVAT's export."""

_UPLOADED = frozenset({"box", "polygon", "ellipse"})
_NOT_STORED = {
    "polyline": "a polyline",
    "points": "points",
    "cuboid": "a cuboid",
    "mask": "a mask",
    "skeleton": "a skeleton",
}
_IMAGE_ATTRS = frozenset({"id", "name", "width", "height", "subset", "task_id"})
_SHAPE_ATTRS = frozenset(
    {
        "label",
        "source",
        "occluded",
        "z_order",
        "group_id",
        "rotation",
        "outside",
        "keyframe",
        "track_id",
    }
)
_GEOMETRY = {
    "box": ("xtl", "ytl", "xbr", "ybr"),
    "ellipse": ("cx", "cy", "rx", "ry"),
    "polygon": ("points",),
}


@dataclass(slots=True)
class _Meta:
    """What ``<meta>`` says: each label's attribute types, and the task's subset."""

    types: dict[tuple[str, str], str] = field(default_factory=dict)
    subset: str = ""
    version: str = ""


class _Xml:
    """One pass over a CVAT XML file: :meth:`images` gives each ``<image>`` (freed after),
    ``meta`` is filled as ``<meta>`` ends; ``others`` lists top-level elements that are
    neither."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = _Meta()
        self.others: dict[str, None] = {}

    def images(self) -> Iterator[ET.Element]:
        path = self.path
        try:
            with open(path, "rb") as f:
                yield from self._children(f)
        except ET.ParseError as exc:
            # the message names the line and column: "mismatched tag: line 7, column 4"
            raise SourceError(f"{path}: not well-formed XML: {exc}") from None
        except OSError as exc:
            raise SourceError(f"{path}: cannot read the file: {exc.strerror or exc}") from None

    def _children(self, f: Any) -> Iterator[ET.Element]:
        path = self.path
        depth = 0
        root: ET.Element | None = None
        for event, elem in ET.iterparse(f, events=("start", "end")):
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    if elem.tag != "annotations":
                        raise SourceError(
                            f"{path}: not a CVAT for images XML file: its root element is "
                            f"<{elem.tag}>, CVAT's is <annotations>"
                        )
                continue
            depth -= 1
            if depth != 1:
                continue
            assert root is not None
            tag = elem.tag
            if tag == "image":
                yield elem
            elif tag == "meta":
                self._read_meta(elem)
            elif tag == "version":
                self.meta.version = (elem.text or "").strip()
            elif tag == "track":
                raise SourceError(
                    f"{path}: a CVAT for video file (it holds <track> elements); export the "
                    "task as 'CVAT for images 1.1', which gives each image its shapes"
                )
            else:
                self.others.setdefault(tag, None)
            root.clear()  # every finished child of the root is freed

    def _read_meta(self, meta: ET.Element) -> None:
        for label in meta.iter("label"):
            name = (label.findtext("name") or "").strip()
            for attribute in label.iter("attribute"):
                attr = (attribute.findtext("name") or "").strip()
                kind = (attribute.findtext("input_type") or "").strip()
                if name and attr:
                    self.meta.types[(name, attr)] = kind
        subsets = [(s.text or "").strip() for s in meta.iter("subset")]
        if len(subsets) == 1:
            self.meta.subset = subsets[0]


class CvatSource(DatasetSource):
    """The rows of a CVAT for images 1.1 XML file (see the module docs)."""

    format_name = "cvat"
    describe = "a CVAT for images export (annotations.xml)"
    options_read = frozenset({"regions", "images", "dataset_per_split", "split"})
    _xml: Path
    _images_dir: Path
    _default_images: bool
    _fingerprint: dict[str, Any]
    _cells: Cells

    @staticmethod
    def recognises(path: Path) -> bool:
        """An ``.xml`` file, or a folder holding ``annotations.xml``."""
        if path.is_dir():
            return (path / ANNOTATIONS).is_file()
        return path.suffix.lower() == ".xml"

    def _prepare(self) -> None:
        assert self.path is not None
        p = self.path
        self._xml = p / ANNOTATIONS if p.is_dir() else p
        if not self._xml.is_file():
            raise SourceError(f"{p}: no {ANNOTATIONS} (a CVAT for images export holds one)")
        given = self.options.images
        self._default_images = given is None
        self._images_dir = Path(given) if given is not None else self._xml.parent / "images"
        self._root_with(self._images_dir)
        stats = self.stats
        skipped = Skipped(stats)
        unknown = Unknown(stats)
        names: dict[str, None] = {}
        subsets: dict[str, None] = {}
        files = FileList()
        files.add(self._xml)
        chosen = self.options.split
        self._repeats = Repeats()
        rows = images = 0
        xml = _Xml(self._xml)
        for image in xml.images():
            subset = image.get("subset", xml.meta.subset)
            subsets.setdefault(subset, None)
            if chosen is not None and subset != chosen:
                continue  # another subset's image: not read, not warned of
            where = _where(image)
            unknown.check(where, "<image> attribute", image.attrib, _IMAGE_ATTRS)
            for k, child in enumerate(image, start=1):
                shown = f"{where} shape {k}"
                why = _skipped(child)
                if why:
                    skipped.add(shown, why)
                    continue
                known = _SHAPE_ATTRS | set(_GEOMETRY.get(child.tag, ()))
                unknown.check(shown, f"<{child.tag}> attribute", child.attrib, known)
                inner = {e.tag: None for e in child}
                unknown.check(shown, f"element in <{child.tag}>", inner, ("attribute",))
                label = (child.get("label") or "").strip()
                if label:
                    names.setdefault(label, None)
            rows += _positions(image)
            images += 1
            path = self._image_path(image.get("name", ""), subset)
            self._repeats.add(str(path))
            if not self._xml_is_data():
                files.add(path)
        self._repeats.seal()
        skipped.finish()
        held = [s for s in subsets if s]
        if chosen is not None and chosen not in held:
            listed = ", ".join(repr(s) for s in held) or "none"
            raise SourceError(
                f"{self._xml}: no subset {chosen!r}; its images' subsets are {listed}"
            )
        if self.options.dataset_per_split and not held:
            stats.warn(
                f"--dataset-per-split: {self._xml} gives its images no subset; no dataset is filled"
            )
        if xml.meta.version and xml.meta.version != "1.1":
            stats.note(f"{self._xml}: format version {xml.meta.version}, read as 1.1")
        for tag in xml.others:
            stats.warn(f"{self._xml}: the element <{tag}> is not one ingest reads; not read")
        self._meta = xml.meta
        self._fingerprint = files.fingerprint(self.format_name)
        stats.update(rows_total=rows, images_total=images)
        self._names = concept_map(names, str(self._xml))
        self._cells = Cells("file", self._names)
        self.columns = self._cells.columns

    def _xml_is_data(self) -> bool:
        """True when the dataset was given by its XML file (the journal fingerprints it
        alone, as it does a COCO file)."""
        return self.path == self._xml

    def _image_path(self, name: str, subset: str) -> Path:
        """Where the image ``name`` of ``subset`` is (the first candidate when none is)."""
        candidates = self._candidates(name, subset)
        return next((c for c in candidates if os.path.isfile(c)), candidates[0])

    def _candidates(self, name: str, subset: str) -> list[Path]:
        base = self._images_dir
        out = [base / subset / name] if subset else []
        out.append(base / name)
        if self._default_images:
            out.append(self._xml.parent / name)
        return out

    def fingerprint(self) -> dict[str, Any]:
        """The XML file and every image it names, as the opening pass found them."""
        return self._fingerprint

    def _items(self) -> Generator[list[Item], None, None]:
        line = 2
        chosen = self.options.split
        xml = _Xml(self._xml)
        for k, image in enumerate(xml.images()):
            subset = image.get("subset", self._meta.subset)
            if chosen is not None and subset != chosen:
                # another subset's image keeps its positions, so that each row has the same
                # position whatever --split (one journal serves every subset)
                line += _positions(image)
                if not k & 0x3FF:
                    yield []  # cancellable between thread hops
                continue
            rows, line = self._image_rows(image, subset, line)
            yield rows

    def _image_rows(self, image: ET.Element, subset: str, line: int) -> tuple[list[Item], int]:
        """The rows of one ``<image>`` from position ``line``, and the next free one."""
        root = self.base_dir
        where = _where(image)
        name = image.get("name", "")
        path = self._image_path(name, subset)
        cell = relative(path, root)
        problem = ""
        if not name:
            problem = f"{where}: the image has no name"
        elif not os.path.isfile(path):
            looked = ", ".join(relative(c, root) for c in self._candidates(name, subset))
            problem = f"{where}: the image is not there; looked for {looked}"
        elif self._repeats.again(str(path)):
            problem = f"{where}: an earlier <image> of the file names the same image file"
        size = _size(image, path)
        if size is None and not problem:
            problem = (
                f"{where}: the image's size is unknown (no width and height, and the "
                "image cannot be read)"
            )
        tags = [(k, c) for k, c in enumerate(image, start=1) if c.tag == "tag"]
        metadata = dump(self._metadata(image, subset, [c for _, c in tags]))
        dataset = subset if self.options.dataset_per_split else ""
        make = partial(self._cells.make, cell, metadata=metadata, dataset=dataset)
        shape_rows = ShapeRows(self.options, make)
        rows: list[Item] = []
        column = "file" if problem else ""
        for i, (k, tag) in enumerate(tags):
            label = (tag.get("label") or "").strip()
            if label:
                rows.append((line + i, make(concept=concept_id(label)), column, problem))
            else:
                why = problem or f"{where} shape {k}: the tag has no label"
                rows.append((line + i, make(), column or "pos_concepts", why))
        at = line + max(1, len(tags))
        for k, child in enumerate(image, start=1):
            if child.tag == "tag":
                continue
            if not _skipped(child):
                rows += self._shape_rows(shape_rows, at, f"{where} shape {k}", child, size, problem)
            at += 2
        if not rows:
            rows.append((line, make(), column, problem))
        return rows, at

    def _shape_rows(
        self,
        rows: ShapeRows,
        line: int,
        where: str,
        shape: ET.Element,
        size: tuple[float, float] | None,
        problem: str,
    ) -> list[Item]:
        label = (shape.get("label") or "").strip()
        concept = concept_id(label)
        info = dump(self._info(shape, label))
        kind = shape.tag
        column = "left_col" if kind == "box" else "polygon"
        if problem or size is None:
            return [rows.invalid(line, "file", problem, concept, info)]
        if not label:
            return [
                rows.invalid(line, "pos_concepts", f"{where}: the shape has no label", "", info)
            ]
        try:
            if kind == "polygon":
                points = _points(shape.get("points", ""))
                return rows.outline(line, where, points, size, concept, info)
            values = [_float(shape, k) for k in _GEOMETRY[kind]]
            rotation = _float(shape, "rotation", 0.0)
        except ValueError as exc:
            return [rows.invalid(line, column, f"{where}: {exc}", concept, info)]
        if kind == "ellipse":
            cx, cy, rx, ry = values
            curve = ellipse_points(cx, cy, rx, ry, rotation)
            bounds = ellipse_bounds(cx, cy, rx, ry, rotation)
            return rows.outline(line, where, curve, size, concept, info, clip=True, bounds=bounds)
        if rotation % 360.0:
            x0, y0, x1, y1 = values
            corners = rotated_box_points(x0, y0, x1, y1, rotation)
            return rows.outline(line, where, corners, size, concept, info, clip=True)
        x0, y0, x1, y1 = values
        return rows.box(line, where, (x0, y0, x1, y1), size, concept, info)

    def _info(self, shape: ET.Element, label: str) -> dict[str, Any]:
        info: dict[str, Any] = {"shape_type": shape.tag}
        for key in ("occluded", "z_order", "group_id", "track_id", "keyframe"):
            value = shape.get(key)
            if value is not None:
                info[key] = _number(value)
        source = shape.get("source")
        if source is not None:
            info["source"] = source
        rotation = shape.get("rotation")
        if rotation is not None:
            info["rotation"] = _number(rotation)
        attributes = self._attributes(shape, label)
        if attributes:
            info["attributes"] = attributes
        return info

    def _attributes(self, element: ET.Element, label: str) -> dict[str, Any]:
        """The ``<attribute name>`` values of a shape or tag, typed as ``<meta>`` says."""
        out: dict[str, Any] = {}
        for attribute in element.iter("attribute"):
            name = attribute.get("name", "")
            text = attribute.text or ""
            kind = self._meta.types.get((label, name), "")
            value: Any = text
            if kind == "checkbox" and text.strip().lower() in ("true", "false"):
                value = text.strip().lower() == "true"
            elif kind == "number":
                value = _number(text)
            out[name] = value
        return out

    def _metadata(self, image: ET.Element, subset: str, tags: list[ET.Element]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        image_id = image.get("id")
        if image_id is not None:
            meta["cvat_image_id"] = _number(image_id)
        if subset:
            meta["split"] = subset
        task = image.get("task_id")
        if task is not None:
            meta["cvat_task_id"] = _number(task)
        described: dict[str, Any] = {}
        for tag in tags:  # a tag's source, group and attributes: {"good_frame": {...}}
            label = (tag.get("label") or "").strip()
            info = self._info(tag, label)
            del info["shape_type"]
            if label and info:
                described[label] = info
        if described:
            meta["tags"] = described
        return meta


def _skipped(child: ET.Element) -> str:
    """Why a child of ``<image>`` is not uploaded ("" when it is, or is a tag)."""
    tag = child.tag
    if tag == "tag":
        return ""
    if tag in _NOT_STORED:
        return f"{_NOT_STORED[tag]} (<{tag}>) is not a box or a polygon"
    if tag not in _UPLOADED:
        return f"the element <{tag}> is not one ingest reads"
    if child.get("outside") == "1":
        return "the shape is marked outside (not visible in the image)"
    return ""


def _positions(image: ET.Element) -> int:
    """The positions an ``<image>`` takes (see the module docs)."""
    tags = sum(1 for c in image if c.tag == "tag")
    return max(1, tags) + 2 * (len(image) - tags)


def _where(image: ET.Element) -> str:
    """An ``<image>`` in a message: its name, id and subset (a project's images of one
    name in several subsets are told apart)."""
    subset = image.get("subset")
    more = f", subset {subset}" if subset else ""
    return f"image {image.get('name', '')!r} (id {image.get('id', '?')}{more})"


def _size(image: ET.Element, path: Path) -> tuple[float, float] | None:
    try:
        width, height = float(image.get("width", "")), float(image.get("height", ""))
    except ValueError:
        got = image_size(path)
        return (float(got[0]), float(got[1])) if got else None
    if width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height):
        return width, height
    return None


def _float(shape: ET.Element, key: str, default: float | None = None) -> float:
    text = shape.get(key)
    if text is None:
        if default is not None:
            return default
        raise ValueError(f"the <{shape.tag}> has no {key}")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{key} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{key} {text!r} is not a finite number")
    return value


def _points(text: str) -> list[float]:
    """``x0,y0;x1,y1;...`` as flat numbers."""
    out: list[float] = []
    for pair in text.split(";"):
        pieces = pair.split(",")
        if len(pieces) != 2:
            raise ValueError(f"points must be 'x,y;x,y;...', not {text[:60]!r}")
        try:
            out += [float(pieces[0]), float(pieces[1])]
        except ValueError:
            raise ValueError(f"the point {pair!r} is not two numbers") from None
    return out


def _number(text: str) -> int | float | str:
    """A number as an int when whole, else a float; text that is no number stays text."""
    try:
        value = float(text)
    except ValueError:
        return text
    if value.is_integer() and math.isfinite(value):
        return int(value)
    return value
