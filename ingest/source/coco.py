"""COCO JSON files, streamed: never loaded whole, flat in memory whatever their size.

The file is read with ijson (its C backend, ``yajl2_c``, when installed: the notes
say which ran), in passes over the file, never with ``json.load``:

1. on opening, ``categories`` (a few hundred entries: kept; two names making one
   concept id stop the upload before anything is sent) and the first image (does the
   file give URLs?); a malformed file fails here, with its position;
2. ``images``, then ``annotations``, each record added to a
   :class:`~ingest.source.grouping.DiskGrouper` under its image id (COCO orders
   annotations by category, not by image): no image table in memory, one bucket of
   records at a time when they are read back, each image with its annotations.

Rows and their positions (``line``, what the journal records): image *i* of
``images`` is line ``2 + i`` (its image-level row, used when it has no annotation);
the annotations follow in file order, each with one position for its box and one per
polygon of its segmentation, used or not (``--regions``). Positions depend on the file
only: not on the grouping's order, nor on ``--regions`` (a re-run with other regions
skips exactly the regions that landed).

* Images: ``coco_url``, else ``flickr_url``, when the file gives URLs (its first image
  has one) and no ``--images DIR`` is given; otherwise the local file ``file_name``
  under ``--images`` (default: the first of ``images/``, ``<split>/`` (from
  ``instances_<split>.json``), beside the file or one folder up, or the file's own
  folder), uploaded as bytes.
* Boxes: ``bbox`` ``[x, y, w, h]`` in pixels over the image's ``width`` and ``height``;
  one pixel of overshoot is clamped, anything else outside or without area is an
  invalid row named by its annotation id.
* Polygons: each polygon of a ``segmentation`` list is one polygon region. A crowd
  annotation in RLE has no polygon: it keeps its box (counted in the notes).
* ``annotation_info``: ``coco_annotation_id``, ``iscrowd``, ``area``; the input's
  metadata: ``coco_image_id`` and ``license``.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

import ijson

from ingest.errors import SourceError

from .cells import concept_id
from .dataset import Cells, DatasetSource, Item, concept_map, dump, relative
from .geometry import pixel_box, unit_polygon
from .grouping import DiskGrouper

__all__ = ["BACKEND", "CocoSource"]

BACKEND: str = ijson.backend
"""The ijson backend in use (``yajl2_c`` is the fast one)."""

_IMAGE, _ANNOTATION = "I", "A"


class CocoSource(DatasetSource):
    """The rows of a COCO file (see the module docs)."""

    format_name = "coco"
    describe = "a COCO JSON file"
    folder = False
    options_read = frozenset({"regions", "images"})
    _categories: dict[Any, str]
    rle_kept: int = 0
    """Crowd annotations in RLE that kept their box (``--regions polygons|both``)."""
    _url_mode: bool
    _images_dir: Path
    _cells: Cells

    @staticmethod
    def recognises(path: Path) -> bool:
        """A ``.json`` file."""
        return path.suffix.lower() == ".json" and not path.is_dir()

    def _prepare(self) -> None:
        path = self.path
        assert path is not None
        if not path.is_file():
            raise SourceError(f"{path}: a COCO dataset is given by its JSON file")
        self._names, self._categories, first = self._read_head(path)
        given = self.options.images
        self._url_mode = given is None and bool(first.get("coco_url") or first.get("flickr_url"))
        self._images_dir = Path(given) if given is not None else _default_images(path)
        if self._url_mode:
            self.base_dir = path.parent.resolve()
        else:
            self._root_with(self._images_dir)
        self._cells = Cells("url" if self._url_mode else "file", self._names)
        self.columns = self._cells.columns
        self.stats.note(f"COCO read with ijson's {BACKEND} backend")

    @staticmethod
    def _read_head(path: Path) -> tuple[dict[str, str], dict[Any, str], dict[str, Any]]:
        """The categories (checked) and the first image: one pass over the file, and the
        start of another."""
        names: dict[str, None] = {}
        categories: dict[Any, str] = {}
        with _open(path) as f:
            for i, cat in enumerate(_items(f, path, "categories.item")):
                if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
                    raise SourceError(f"{path}: categories[{i}] has no id and name")
                name = str(cat["name"])
                names.setdefault(name, None)
                categories[_key(cat["id"])] = concept_id(name)
        if not categories:
            raise SourceError(
                f"{path}: no categories; a COCO file holds 'images', 'annotations' and 'categories'"
            )
        mapping = concept_map(names, f"{path}: categories")
        with _open(path) as f:
            first = next(iter(_items(f, path, "images.item")), None)
        if not isinstance(first, dict):
            raise SourceError(f"{path}: no images; a COCO file holds a list of 'images'")
        return mapping, categories, first

    def _items(self) -> Generator[list[Item], None, None]:
        path = self.path
        assert path is not None
        polygons = self.options.polygons
        with DiskGrouper(
            self._tmp_dir,
            expected_bytes=path.stat().st_size,
            key=_group_key,
            what=f"the annotations of {path}",
        ) as grouper:
            add = grouper.add
            stats = self.stats
            stats.update(phase="grouping")
            started = time.monotonic()
            images = 0
            with _open(path) as f:
                for img in _items(f, path, "images.item"):
                    if not isinstance(img, dict):
                        raise SourceError(f"{path}: images[{images}] is not an object")
                    url = img.get("coco_url") or img.get("flickr_url") or ""
                    add(
                        [
                            _IMAGE,
                            _key(img.get("id")),
                            2 + images,
                            str(img.get("file_name") or ""),
                            str(url),
                            _int(img.get("width")),
                            _int(img.get("height")),
                            img.get("license") if isinstance(img.get("license"), int) else None,
                        ]
                    )
                    images += 1
                    if not images & 0xFFFF:
                        yield []  # cancellable between thread hops
            line = 2 + images
            with _open(path) as f:
                for k, ann in enumerate(_items(f, path, "annotations.item")):
                    if not isinstance(ann, dict):
                        raise SourceError(f"{path}: annotations[{k}] is not an object")
                    seg = ann.get("segmentation")
                    listed = seg if isinstance(seg, list) else ()
                    polys = listed if polygons and listed else None
                    rle = isinstance(seg, dict)
                    # one position for the box and one per polygon, whatever --regions:
                    # a re-run with other --regions finds each region where it was
                    rows = 1 + len(listed)
                    area = ann.get("area")
                    add(
                        [
                            _ANNOTATION,
                            _key(ann.get("image_id")),
                            line,
                            ann.get("id") if isinstance(ann.get("id"), (int, str)) else None,
                            _key(ann.get("category_id")),
                            ann.get("bbox") if isinstance(ann.get("bbox"), list) else None,
                            polys,
                            _int(ann.get("iscrowd")),
                            area if isinstance(area, (int, float)) else None,
                            rle,
                        ]
                    )
                    line += rows
                    if not k & 0xFFFF:
                        yield []
            grouper.seal()
            stats.update(
                rows_total=line - 2 - images,
                images_total=images,
                grouped=True,
                grouping_temp_bytes=grouper.bytes_written,
                grouping_s=time.monotonic() - started,
                phase="",
            )
            for group in grouper.groups():
                yield self._group_rows(group)
        if self.rle_kept:
            self.stats.note(
                f"{self.rle_kept:,} crowd annotation(s) in RLE have no polygon: they kept their box"
            )

    def _group_rows(self, group: list[Any]) -> list[Item]:
        make = self._cells.make
        first = group[0]
        out: list[Item] = []
        if first[0] != _IMAGE:
            for rec in group:
                out.append(
                    (
                        rec[2],
                        make(""),
                        self._cells.image_column,
                        f"annotation id {rec[3]}: its image_id {rec[1]!r} is not in images",
                    )
                )
            return out
        _, image_id, image_line, file_name, url, width, height, license_ = first
        meta: dict[str, Any] = {"coco_image_id": image_id}
        if license_ is not None:
            meta["license"] = license_
        metadata = dump(meta)
        image_problem = ""
        if self._url_mode:
            cell = url
            if not url:
                image_problem = (
                    f"image id {image_id!r} ({file_name}) has no coco_url or flickr_url; "
                    "give --images DIR to upload the local files"
                )
        else:
            cell = relative(self._images_dir / file_name, self.base_dir)
            if not file_name:
                image_problem = f"image id {image_id!r} has no file_name"
        if not image_problem and not (width and height):
            image_problem = f"image id {image_id!r} has no width and height"
        anns = [rec for rec in group[1:] if rec[0] == _ANNOTATION]
        for rec in group[1:]:
            if rec[0] == _IMAGE:
                reason = f"image id {image_id!r} appears more than once in images"
                out.append((rec[2], make(cell, metadata=metadata), "", reason))
        if not anns:
            out.append((image_line, make(cell, metadata=metadata), "", image_problem))
            return out
        boxes = self.options.boxes
        for rec in anns:
            _, _, line, ann_id, category, bbox, polys, iscrowd, area, rle = rec
            where = f"annotation id {ann_id}"
            info: dict[str, Any] = {"coco_annotation_id": ann_id}
            if iscrowd is not None:
                info["iscrowd"] = iscrowd
            if area is not None:
                info["area"] = area
            concept = self._categories.get(category)
            info_cell = dump(info)
            blank = make(cell, concept=concept or "", metadata=metadata, info=info_cell)
            if image_problem:
                out.append((line, blank, self._cells.image_column, f"{where}: {image_problem}"))
                continue
            if concept is None:
                reason = f"{where}: category_id {category!r} is not in categories"
                out.append((line, blank, "pos_concepts", reason))
                continue
            if rle and self.options.polygons:
                self.rle_kept += 1
            if boxes or not polys:  # the box at the annotation's position
                box: tuple[float, float, float, float] | str
                try:
                    x, y, w, h = bbox
                    x, y, w, h = float(x), float(y), float(w), float(h)
                except (TypeError, ValueError):
                    box = "bbox must be [x, y, width, height] in pixels"
                else:
                    box = pixel_box(x, y, x + w, y + h, width, height)
                if isinstance(box, str):
                    out.append((line, blank, "left_col", f"{where}: {box}"))
                else:
                    full = make(cell, box=box, concept=concept, metadata=metadata, info=info_cell)
                    out.append((line, full, "", ""))
            for i, poly in enumerate(polys or (), start=1):  # polygon i at position + i
                points: tuple[float, ...] | str
                if isinstance(poly, list) and all(isinstance(v, (int, float)) for v in poly):
                    points = unit_polygon([float(v) for v in poly], width, height)
                else:
                    points = "a polygon must be a list of x, y pixel coordinates"
                if isinstance(points, str):
                    out.append((line + i, blank, "polygon", f"{where} polygon {i}: {points}"))
                else:
                    full = make(
                        cell, polygon=points, concept=concept, metadata=metadata, info=info_cell
                    )
                    out.append((line + i, full, "", ""))
        return out


def _group_key(record: list[Any]) -> Any:
    return record[1]


def _key(value: Any) -> Any:
    """An id as a grouping key: ints and strings as they are, anything else as text."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    return repr(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _open(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file: {exc.strerror or exc}") from None


def _items(f: IO[bytes], path: Path, prefix: str) -> Iterator[Any]:
    """The values under ``prefix``; a malformed file raises :class:`SourceError` with where."""
    try:
        yield from ijson.items(f, prefix, use_float=True)
    except ijson.JSONError as exc:
        raise SourceError(_json_error(path, f, exc)) from None


def _json_error(path: Path, f: IO[bytes], exc: Exception) -> str:
    """Where and what: the line up to the parser's position, and its own words."""
    try:
        end = f.tell()
    except (OSError, ValueError):
        end = 0
    lines = 1
    if end:
        with open(path, "rb") as g:
            left = end
            while left > 0 and (chunk := g.read(min(left, 1 << 20))):
                lines += chunk.count(b"\n")
                left -= len(chunk)
    text = str(exc).splitlines()
    what = text[0].strip() if text else type(exc).__name__
    near = f" near {text[1].strip()[:60]!r}" if len(text) > 1 and text[1].strip() else ""
    return f"{path}: not valid JSON, before line {lines} (byte {end:,}): {what}{near}"


def _default_images(path: Path) -> Path:
    """The usual image folder of a COCO file (see the module docs)."""
    here, up = path.parent, path.parent.parent
    names = ["images"]
    stem = path.stem
    if "_" in stem:
        names.append(stem.rsplit("_", 1)[1])  # instances_val2017 -> val2017
    for folder in (here, up):
        for name in names:
            if (folder / name).is_dir():
                return folder / name
    return here
