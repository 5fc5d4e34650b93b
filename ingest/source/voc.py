"""Pascal VOC folders: ``Annotations/*.xml`` beside the images (``JPEGImages/``).

* Each XML file is one image (``filename``, ``size``) and its ``object`` elements
  (``name``, ``bndbox`` with ``xmin ymin xmax ymax``, and ``pose``, ``truncated``,
  ``difficult``, ``occluded``). Files are read one at a time with
  :mod:`xml.etree.ElementTree`, in file-name order.
* Boxes are 1-based inclusive pixels: left = (xmin - 1) / width, top = (ymin - 1) /
  height, right = xmax / width, bottom = ymax / height. A box that overshoots the
  image by at most one pixel is clamped; anything else outside, or no area, is an
  invalid row naming the file and the object's index.
* The image is ``JPEGImages/<filename>`` (else ``images/<filename>``, else beside
  ``Annotations/``), uploaded as bytes. An image without objects is still uploaded.
* Opening reads every file once for its class names, so two names that make one
  concept id, or a malformed file, are reported before anything is sent.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Generator
from pathlib import Path
from typing import Any, ClassVar

from ingest.errors import SourceError

from .cells import concept_id
from .dataset import Cells, DatasetSource, Item, concept_map, dump, relative
from .fingerprint import FileList
from .geometry import pixel_box as _pixel_box
from .imagesize import IMAGE_SUFFIXES, image_size

__all__ = ["VocSource"]

_IMAGE_FOLDERS = ("JPEGImages", "images", ".")
_FLAGS = ("difficult", "truncated", "occluded")


class VocSource(DatasetSource):
    """The rows of a Pascal VOC folder (see the module docs)."""

    format_name = "voc"
    describe = "a Pascal VOC dataset (an Annotations/ folder)"
    options_read: ClassVar[frozenset[str]] = frozenset()
    _xmls: list[str]
    _fingerprint: dict[str, Any]
    _voc: Path
    _cells: Cells

    @staticmethod
    def recognises(path: Path) -> bool:
        """A folder holding ``Annotations/``."""
        return (path / "Annotations").is_dir()

    def _prepare(self) -> None:
        assert self.path is not None
        p = self.path
        if p.name == "Annotations" and p.is_dir():
            p = p.parent
        ann = p / "Annotations"
        if not ann.is_dir():
            raise SourceError(f"{p}: no Annotations/ folder (a Pascal VOC dataset holds one)")
        self._voc = p
        try:
            # names, not paths: a list of a million names is a few dozen MB
            self._xmls = sorted(e.name for e in os.scandir(ann) if e.name.lower().endswith(".xml"))
        except OSError as exc:
            raise SourceError(f"{ann}: cannot list the folder: {exc.strerror or exc}") from None
        # the one pass over every file before any row: class names (two making one
        # concept id stop the upload here), totals, and the journal's fingerprint
        names: dict[str, None] = {}
        files = FileList()
        rows = 0
        for xml_name in self._xmls:
            xml_path = ann / xml_name
            doc = _parse(xml_path)
            objects = 0
            for obj in doc.iter("object"):
                objects += 1
                name = (obj.findtext("name") or "").strip()
                if name:
                    names.setdefault(name, None)
            rows += max(1, objects)
            files.add(xml_path)
            files.add(self._image(xml_path, (doc.findtext("filename") or "").strip()))
        self._fingerprint = files.fingerprint(self.format_name)
        self.stats.update(rows_total=rows, images_total=len(self._xmls))
        self._names = concept_map(names, str(ann))
        fail_dir = self.path.parent.resolve()
        self.base_dir = Path(os.path.commonpath([fail_dir, p.resolve()]))
        self._cells = Cells("file")
        self.columns = self._cells.columns

    def _image(self, xml_path: Path, filename: str) -> Path:
        candidates: list[Path] = []
        for folder in _IMAGE_FOLDERS:
            base = self._voc / folder
            if filename:
                candidates.append(base / filename)
            else:
                candidates.extend(base / (xml_path.stem + s) for s in sorted(IMAGE_SUFFIXES))
        for c in candidates:
            if c.is_file():
                return c
        return candidates[0]

    def fingerprint(self) -> dict[str, Any]:
        """Every annotation file and image, as the opening pass found them."""
        return self._fingerprint

    def _items(self) -> Generator[list[Item], None, None]:
        line = 2
        make = self._cells.make
        root = self.base_dir
        ann = self._voc / "Annotations"
        for name in self._xmls:
            xml_path = ann / name
            doc = _parse(xml_path)
            shown = relative(xml_path, root)
            filename = (doc.findtext("filename") or "").strip()
            img = self._image(xml_path, filename)
            cell = relative(img, root)
            width = _number(doc.findtext("size/width"))
            height = _number(doc.findtext("size/height"))
            if not (width and height and width > 0 and height > 0):
                got = image_size(img)
                width, height = got if got else (None, None)
            rows: list[Item] = []
            for index, obj in enumerate(doc.iter("object"), start=1):
                where = f"{shown} object {index}"
                name = (obj.findtext("name") or "").strip()
                concept = concept_id(name)
                info: dict[str, object] = {}
                for flag in _FLAGS:
                    value = _number(obj.findtext(flag))
                    if value is not None:
                        info[flag] = int(value) if float(value).is_integer() else value
                pose = (obj.findtext("pose") or "").strip()
                if pose:
                    info["pose"] = pose
                info_cell = dump(info)
                blank = make(cell, concept=concept, info=info_cell)
                if not name:
                    rows.append((line, blank, "pos_concepts", f"{where}: the object has no name"))
                    line += 1
                    continue
                corners = [_number(obj.findtext(f"bndbox/{k}")) for k in _CORNERS]
                if any(v is None for v in corners):
                    missing = [k for k, v in zip(_CORNERS, corners, strict=True) if v is None]
                    rows.append(
                        (line, blank, "left_col", f"{where}: bndbox has no {', '.join(missing)}")
                    )
                    line += 1
                    continue
                if width is None or height is None:
                    rows.append(
                        (
                            line,
                            blank,
                            "left_col",
                            f"{where}: the image size is unknown "
                            "(no size/width and size/height, and the image cannot be read)",
                        )
                    )
                    line += 1
                    continue
                xmin, ymin, xmax, ymax = (float(v) for v in corners if v is not None)
                box = _pixel_box(xmin - 1, ymin - 1, xmax, ymax, width, height)
                if isinstance(box, str):
                    box = box.replace(
                        f"({_g(xmin - 1)}, {_g(ymin - 1)}, {_g(xmax)}, {_g(ymax)})",
                        f"xmin {_g(xmin)} ymin {_g(ymin)} xmax {_g(xmax)} ymax {_g(ymax)}",
                    )
                    rows.append((line, blank, "left_col", f"{where}: {box}"))
                else:
                    rows.append(
                        (line, make(cell, box=box, concept=concept, info=info_cell), "", "")
                    )
                line += 1
            if not rows:
                rows.append((line, make(cell), "", ""))
                line += 1
            yield rows


_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _g(v: float) -> str:
    return str(int(v)) if v.is_integer() else f"{v:g}"


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        # the message names the line and column: "mismatched tag: line 7, column 4"
        raise SourceError(f"{path}: not well-formed XML: {exc}") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
