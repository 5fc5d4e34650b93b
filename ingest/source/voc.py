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
* Splits: each ``ImageSets/Main/<split>.txt`` of one image id per line (``train``,
  ``val``, ``trainval``, ``test``; the devkit's per-class files, two columns, are not
  splits) puts its images' splits into their metadata (``{"splits": ["train",
  "trainval"]}``). ``split`` (``--split NAME``) reads one split only;
  ``dataset_per_split`` puts each input into the dataset of its split (the one read,
  else its smallest: ``train`` or ``val`` rather than ``trainval``). A row's position
  is the same whatever the split read, so one journal serves every split.
* Opening reads every file once for its class names, so two names that make one
  concept id, or a malformed file, are reported before anything is sent; the same pass
  counts each file's rows and fingerprints the files for the journal.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from array import array
from bisect import bisect_left
from collections.abc import Generator
from functools import partial
from pathlib import Path
from typing import Any

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
    options_read = frozenset({"dataset_per_split", "split"})
    _xmls: list[str]
    _rows_of: array[int]
    """Positions each file's rows take (its objects, or one for an image without)."""
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
        self._rows_of = array("I")
        for xml_name in self._xmls:
            xml_path = ann / xml_name
            doc = _parse(xml_path)
            objects = 0
            for obj in doc.iter("object"):
                objects += 1
                name = (obj.findtext("name") or "").strip()
                if name:
                    names.setdefault(name, None)
            files.add(xml_path)
            files.add(self._image(xml_path, (doc.findtext("filename") or "").strip()))
            self._rows_of.append(max(1, objects))
        self._read_splits(files)
        self._fingerprint = files.fingerprint(self.format_name)
        chosen = [i for i in range(len(self._xmls)) if self._chosen(i)]
        self.stats.update(
            rows_total=sum(self._rows_of[i] for i in chosen), images_total=len(chosen)
        )
        self._names = concept_map(names, str(ann))
        fail_dir = self.path.parent.resolve()
        self.base_dir = Path(os.path.commonpath([fail_dir, p.resolve()]))
        self._cells = Cells("file", self._names)
        self.columns = self._cells.columns

    def _read_splits(self, files: FileList) -> None:
        """The splits of ``ImageSets/Main``: each file of one image id per line (the
        per-class files, ``<class>_<split>.txt`` with two columns, are not splits)."""
        self._split_names: list[str] = []
        self._masks = array("Q", bytes(8 * len(self._xmls)))
        self._by_size: list[int] = []
        main = self._voc / "ImageSets" / "Main"
        chosen = self.options.split
        listed = sorted(main.glob("*.txt")) if main.is_dir() else []
        sizes: list[int] = []
        for path in listed:
            ids = _split_ids(path)
            if ids is None:
                continue
            bit = len(self._split_names)
            if bit == 64:
                raise SourceError(f"{main}: more than 64 split files; ingest reads up to 64")
            self._split_names.append(path.stem)
            files.add(path)
            found = missing = 0
            for image_id in ids:
                i = self._index(image_id)
                if i is None:
                    missing += 1
                elif not self._masks[i] >> bit & 1:
                    self._masks[i] |= 1 << bit
                    found += 1
            sizes.append(found)
            if missing:
                self.stats.note(
                    f"{path}: {missing:,} image id(s) have no annotation file in Annotations/: "
                    "not uploaded"
                )
        held = ", ".join(repr(n) for n in self._split_names) or "none"
        if chosen is not None and chosen not in self._split_names:
            raise SourceError(f"{self._voc}: no split {chosen!r}; ImageSets/Main holds {held}")
        self._bit = self._split_names.index(chosen) if chosen is not None else None
        # an image's dataset (--dataset-per-split): its smallest split (train rather than
        # trainval), or the split read
        self._by_size = sorted(range(len(sizes)), key=lambda b: (sizes[b], self._split_names[b]))
        if self.options.dataset_per_split:
            if not self._split_names:
                self.stats.warn(
                    f"--dataset-per-split: {self._voc} has no splits (ImageSets/Main/NAME.txt); "
                    "no dataset is filled"
                )
            elif chosen is None and any(m & (m - 1) for m in self._masks):
                self.stats.note(
                    "images in several splits go into the dataset of the smallest one (train or "
                    "val rather than trainval); --split NAME --dataset-per-split fills NAME's"
                )

    def _index(self, image_id: str) -> int | None:
        """The position in ``_xmls`` of the annotation file of ``image_id``."""
        for name in (f"{image_id}.xml", f"{image_id}.XML"):
            i = bisect_left(self._xmls, name)
            if i < len(self._xmls) and self._xmls[i] == name:
                return i
        return None

    def _chosen(self, i: int) -> bool:
        """True when the ``i``-th file is read (every file, unless a split is chosen)."""
        return self._bit is None or bool(self._masks[i] >> self._bit & 1)

    def _split_cells(self, i: int) -> tuple[str, str]:
        """The metadata cell (``{"splits": [...]}``) and dataset cell of the ``i``-th file."""
        mask = self._masks[i]
        if not mask:
            return "", ""
        names = self._split_names
        metadata = dump({"splits": [names[b] for b in range(len(names)) if mask >> b & 1]})
        if not self.options.dataset_per_split:
            return metadata, ""
        if self._bit is not None:
            return metadata, names[self._bit]
        return metadata, next(names[b] for b in self._by_size if mask >> b & 1)

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
        root = self.base_dir
        ann = self._voc / "Annotations"
        for i, name in enumerate(self._xmls):
            if not self._chosen(i):
                # another split's file keeps its positions, so that each row has the same
                # position whatever --split (one journal serves every split)
                line += self._rows_of[i]
                continue
            metadata, dataset = self._split_cells(i)
            make = partial(self._cells.make, metadata=metadata, dataset=dataset)
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


def _split_ids(path: Path) -> list[str] | None:
    """The image ids of a split file, or ``None`` when it is not one (two columns: a
    per-class file such as ``aeroplane_train.txt``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the file: {exc}") from None
    ids: list[str] = []
    for raw in text.splitlines():
        tokens = raw.split()
        if not tokens:
            continue
        if len(tokens) != 1:
            return None
        ids.append(tokens[0])
    return ids
