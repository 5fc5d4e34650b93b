"""Detection datasets as they come: recognising the format, and what the readers share.

``ingest upload PATH`` takes, besides the seed CSV:

* a COCO JSON file (``images``, ``annotations``, ``categories``): :mod:`.coco`;
* a YOLO dataset, its ``data.yaml`` or a folder holding ``images/`` and ``labels/``:
  :mod:`.yolo`;
* a Pascal VOC folder (``Annotations/*.xml`` beside the images): :mod:`.voc`.

:func:`detect` recognises the format from the path (``format=`` overrides). Every
reader turns its annotations into seed-format cells (normalised box or polygon,
concept ids, metadata and ``annotation_info`` as JSON) and feeds them through the
same :class:`~ingest.source.validate.Validator` as a CSV, so a failed row goes to the
failures file as a CSV row that can be fixed and uploaded again. Each row has a
stable position (its ``line``: the journal records finished rows by it), and the rows
of one image always follow each other.

Options travel with the path as a :class:`DatasetPath` (an ``os.PathLike``), so every
entry point that takes a path takes one::

    await ing.run(DatasetPath("instances_val2017.json", regions="both"))
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import anyio
import msgspec

from ingest import ids
from ingest.errors import ConfigError, SourceError
from ingest.model import InvalidRow, Row
from ingest.report import Report

from .cells import BOX_COLUMNS, concept_id, format_polygon
from .reader import RowSource, open_rows
from .summary import ValidationSummary, validate_file
from .validate import Validator

__all__ = [
    "FORMATS",
    "REGIONS",
    "DatasetPath",
    "DatasetSource",
    "FormatOptions",
    "concept_map",
    "detect",
    "image_size",
    "journal_file",
    "validate_path",
]

FORMATS = ("csv", "coco", "yolo", "voc")
REGIONS = ("boxes", "polygons", "both")

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jfif"}
)

#: Rows handed on per list (the readers work in a thread a list at a time).
BATCH_ROWS = 2048

Item: TypeAlias = tuple[int, list[str], str, str]
"""One row from a reader: (line, cells, column, problem); ``problem`` empty when the
cells are to be validated, else the row is invalid for that reason."""


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """How a dataset path is read.

    ``format``: ``csv``, ``coco``, ``yolo``, ``voc`` or ``None`` (recognised from the
    path). ``regions``: ``boxes`` (default), ``polygons`` or ``both``: which regions
    COCO segmentations and YOLO segment rows become (a COCO annotation without a
    polygon, such as a crowd annotation in RLE, keeps its box). ``images``: the folder
    of COCO's local images (default: the usual folders beside the annotation file).
    ``concept_ids``: ``ids`` (concept cells of a CSV hold ids) or ``names`` (they hold
    names, made ids the way the formats' class names are). ``dataset_per_split``
    (YOLO): each split's inputs also go into a dataset named after it, made when the
    app lacks it.
    """

    format: str | None = None
    regions: str = "boxes"
    images: str | None = None
    concept_ids: str = "ids"
    dataset_per_split: bool = False
    """YOLO: put each split's inputs into a dataset of the split's name (train, val...)."""

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.regions not in REGIONS:
            raise ConfigError(f"regions must be one of {', '.join(REGIONS)}, not {self.regions!r}")
        if self.concept_ids not in ("ids", "names"):
            raise ConfigError(f"concept ids must be 'ids' or 'names', not {self.concept_ids!r}")

    @property
    def boxes(self) -> bool:
        return self.regions != "polygons"

    @property
    def polygons(self) -> bool:
        return self.regions != "boxes"


class DatasetPath(os.PathLike[str]):
    """A data path with the options it is read with (usable wherever a path is)."""

    def __init__(
        self, path: str | os.PathLike[str], options: FormatOptions | None = None, **kw: Any
    ) -> None:
        self.path = Path(path)
        self.options = replace(options or FormatOptions(), **kw)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"DatasetPath({str(self.path)!r}, {self.options!r})"


# -- recognising the format -------------------------------------------------------


def require(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path`; :class:`SourceError` when nothing is there."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{path}: no such file or folder")
    return p


def detect(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The format of ``path``: ``format`` when given, else recognised from the path.

    A ``.json`` file is COCO, a ``.yaml``/``.yml`` file a YOLO ``data.yaml``, any other
    file (or a path that does not exist) a CSV; a folder is YOLO when it holds a
    ``data.yaml`` or ``images/`` and ``labels/``, VOC when it holds ``Annotations/``.
    Raises :class:`SourceError` for a folder that is none of them, saying what was
    looked for.
    """
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        return format
    p = Path(path)
    if not p.is_dir():
        suffix = p.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix in (".yaml", ".yml"):
            return "yolo"
        return "csv"
    if (p / "data.yaml").is_file() or (p / "data.yml").is_file():
        return "yolo"
    if (p / "images").is_dir() and (p / "labels").is_dir():
        return "yolo"
    if (p / "Annotations").is_dir():
        return "voc"
    raise SourceError(
        f"{p}: a folder ingest cannot read; looked for a YOLO dataset (data.yaml, or "
        "images/ and labels/ folders) and a Pascal VOC dataset (an Annotations/ folder); "
        "a CSV or a COCO JSON file is given by its own path; --format csv|coco|yolo|voc "
        "says which it is"
    )


# -- what the readers share ---------------------------------------------------------


def concept_map(names: Iterable[str], where: str) -> dict[str, str]:
    """Concept id -> name for class names; two names making one id raise :class:`SourceError`."""
    out: dict[str, str] = {}
    for name in names:
        cid = concept_id(name)
        if not cid or not ids.is_valid_id(cid):
            raise SourceError(
                f"{where}: the class name {name!r} gives no usable concept id "
                "(ids are 1 to 128 characters of a-z, 0-9, '_' and '-')"
            )
        had = out.setdefault(cid, name)
        if had != name:
            raise SourceError(
                f"{where}: the class names {had!r} and {name!r} both become the concept id "
                f"{cid!r} (lower case, characters outside a-z0-9_- become '-'); "
                "rename one before uploading"
            )
    return out


def pixel_box(
    x0: float, y0: float, x1: float, y1: float, width: float, height: float
) -> tuple[float, float, float, float] | str:
    """A pixel box normalised to [0, 1], or why it is invalid.

    An overshoot of at most one pixel is clamped; anything further outside, or no area,
    is refused.
    """
    if x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1:
        values = (x0, y0, x1, y1)
        return f"the box {_nums(values)} lies outside the {_num(width)}x{_num(height)} image"
    if not (-1 <= x0 <= x1 and -1 <= y0 <= y1):  # NaN, or no area
        values = (x0, y0, x1, y1)
        if not all(math.isfinite(v) for v in values):
            return f"the box {_nums(values)} is not made of finite numbers"
        return f"the box {_nums(values)} has no area"
    left, top = max(x0, 0.0), max(y0, 0.0)
    right, bottom = min(x1, float(width)), min(y1, float(height))
    if right <= left or bottom <= top:
        return f"the box {_nums((x0, y0, x1, y1))} has no area"
    return (left / width, top / height, right / width, bottom / height)


def unit_box(
    box: tuple[float, float, float, float], size: tuple[int, int] | None
) -> tuple[float, float, float, float] | str:
    """A normalised box checked like :func:`pixel_box`, one pixel being ``1 / size``.

    Without the image's size only rounding (1e-9) is tolerated beyond [0, 1].
    """
    left, top, right, bottom = box
    if not all(math.isfinite(v) for v in box):
        return f"the box {_nums(box)} is not made of finite numbers"
    tx, ty = (1 / size[0], 1 / size[1]) if size and size[0] and size[1] else (1e-9, 1e-9)
    if left < -tx or top < -ty or right > 1 + tx or bottom > 1 + ty:
        by = " by more than one pixel" if size else ""
        return f"the box {_nums(box)} lies outside the image (normalised [0, 1]){by}"
    left, top = max(left, 0.0), max(top, 0.0)
    right, bottom = min(right, 1.0), min(bottom, 1.0)
    if right <= left or bottom <= top:
        return f"the box {_nums(box)} has no area"
    return (left, top, right, bottom)


def unit_polygon(points: Sequence[float], width: float, height: float) -> tuple[float, ...] | str:
    """Flat pixel ``x, y`` points normalised (one pixel of overshoot clamped), or why not."""
    if len(points) % 2 or len(points) < 6:
        return f"the polygon has {len(points)} numbers; 3 or more x, y pairs are needed"
    out: list[float] = []
    for i, v in enumerate(points):
        limit = width if i % 2 == 0 else height
        if not math.isfinite(v) or v < -1 or v > limit + 1:
            what = "x" if i % 2 == 0 else "y"
            return (
                f"point {i // 2 + 1} of the polygon has {what} = {_num(v)}, outside the "
                f"{_num(width)}x{_num(height)} image"
            )
        out.append(min(max(v, 0.0), float(limit)) / limit)
    return tuple(out)


def relative(p: Path, root: Path) -> str:
    """A cell's path: ``p`` relative to ``root`` (the failures file's folder), else as given."""
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def polygon_bounds(points: Sequence[float]) -> tuple[float, float, float, float]:
    xs, ys = points[0::2], points[1::2]
    return (min(xs), min(ys), max(xs), max(ys))


def _num(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _nums(values: Iterable[float]) -> str:
    return "(" + ", ".join(_num(v) for v in values) + ")"


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG or GIF from its header (``None`` if unknown)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                w, h = struct.unpack("<HH", head[6:10])
                return int(w), int(h)
            if head.startswith(b"\xff\xd8"):
                f.seek(2)
                while True:
                    marker = f.read(2)
                    if len(marker) < 2 or marker[0] != 0xFF:
                        return None
                    kind = marker[1]
                    if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
                        continue
                    (length,) = struct.unpack(">H", f.read(2))
                    if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
                        h, w = struct.unpack(">xHH", f.read(5))
                        return int(w), int(h)
                    f.seek(length - 2, os.SEEK_CUR)
    except (OSError, struct.error):
        return None
    return None


_encode_json = msgspec.json.Encoder().encode


def dump(value: Mapping[str, Any]) -> str:
    """A metadata or annotation_info cell (compact JSON)."""
    return _encode_json(value).decode() if value else ""


@dataclass
class Cells:
    """Builds seed-format cells for one source's columns."""

    image_column: str
    columns: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = [
            self.image_column,
            *BOX_COLUMNS,
            "polygon",
            "pos_concepts",
            "metadata",
            "annotation_info",
            "dataset_id",
        ]

    @staticmethod
    def make(
        image: str,
        *,
        box: Sequence[float] | None = None,
        polygon: Sequence[float] | None = None,
        concept: str = "",
        metadata: str = "",
        info: str = "",
        dataset: str = "",
    ) -> list[str]:
        b = [repr(float(v)) for v in box] if box is not None else ["", "", "", ""]
        p = format_polygon(polygon) if polygon is not None else ""
        return [image, *b, p, concept, metadata, info, dataset]


# -- the source ----------------------------------------------------------------------


class DatasetSource(RowSource):
    """A dataset read through a format reader; the pipeline reads it like a CSV.

    Subclasses implement :meth:`_prepare` (sync, in a thread: read what must be known
    before any row - class names, the first image - and set ``columns``, ``_root``
    and ``_names``; raise :class:`SourceError` for what makes the dataset unusable) and
    :meth:`_items` (sync generator, run a list at a time in a thread: each image's
    rows, as :data:`Item`, one list per image; an empty list now and then during a long
    pass that yields no rows, so that the upload can be cancelled meanwhile).
    """

    format_name: ClassVar[str] = ""
    notes: list[str]
    """What the report should say about this read (backend, rows left out...)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: FormatOptions,
        *,
        dataset_id: str | None = None,
        report: Report | None = None,
    ) -> None:
        super().__init__(path, dataset_id=dataset_id, report=report)
        self.options = options
        self.notes = self._report.notes  # the report says what the read had to say
        self.row_estimate = 0
        """Rows expected (0 until known)."""
        self._root = Path(path).parent
        self._names: dict[str, str] = {}

    async def _open_file(self, path: Path) -> None:
        await anyio.to_thread.run_sync(self._check_and_prepare, path)
        self._validator = Validator(
            self.columns,
            path=str(path),
            base_dir=self._root,
            concept_names=self._names or None,
        )

    def _check_and_prepare(self, path: Path) -> None:
        require(path)
        self._prepare()

    def _prepare(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _items(self) -> Generator[list[Item], None, None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """Names, sizes and modification times of every file the rows come from."""
        h = hashlib.sha256()
        files = size = 0
        for p in self._files():
            try:
                st = p.stat()
            except OSError:
                continue
            files += 1
            size += st.st_size
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
        return {"format": self.format_name, "files": files, "bytes": size, "sha256": h.hexdigest()}

    def _files(self) -> Iterator[Path]:
        yield self.path if self.path is not None else Path()

    def _root_with(self, images: Path) -> None:
        """Cell paths relative to the folder the failures file goes to by default (beside
        the dataset's path), or to its common ancestor with ``images`` (said in a note)."""
        assert self.path is not None
        fail_dir = self.path.parent.resolve()
        self._root = Path(os.path.commonpath([fail_dir, images.resolve()]))
        if self._root != fail_dir:
            self.notes.append(
                f"image paths in the failures file are relative to {self._root}: "
                "write it there (--failures) to upload it again"
            )

    async def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        """Lists of rows, every image's rows together (a reader's list at a time)."""
        validator = self._validator
        if validator is None:
            return
        items = self._items()
        try:
            while True:
                batch = await anyio.to_thread.run_sync(self._next_batch, items, validator)
                if batch is None:
                    break
                if batch:
                    yield batch
                else:
                    await anyio.lowlevel.checkpoint()  # a reader's long pass: cancellable here
        finally:
            items.close()

    def _next_batch(
        self, items: Generator[list[Item], None, None], validator: Validator
    ) -> list[Row | InvalidRow] | None:
        out: list[Row | InvalidRow] = []
        check, columns = validator.check, validator.columns
        for group in items:
            if not group:
                return out  # a reader's pause in a long pass (see :meth:`_items`)
            for line, cells, column, problem in group:
                if problem:
                    out.append(
                        InvalidRow(line, column, problem, dict(zip(columns, cells, strict=False)))
                    )
                else:
                    item = check(line, cells, False)
                    if item is not None:
                        out.append(item)
            if len(out) >= BATCH_ROWS:
                return out
        return out or None


def journal_file(rows: RowSource, state_path: str | os.PathLike[str]) -> Path:
    """The file whose fingerprint the journal keeps for ``rows``.

    A CSV or COCO file is its own; a folder's files are listed (name, size, time of
    every label file and image) in ``STATE.files``, rewritten only when that changed,
    so a changed file makes the journal refuse to resume as a changed CSV does.
    """
    assert rows.path is not None
    if not isinstance(rows, DatasetSource) or rows.path.is_file():
        return rows.path
    manifest = Path(os.fspath(state_path) + ".files")
    text = json.dumps(rows.fingerprint(), sort_keys=True) + "\n"
    try:
        if not manifest.is_file() or manifest.read_text(encoding="utf-8") != text:
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot write {manifest}: {exc.strerror or exc}") from None
    return manifest


async def validate_path(path: str | os.PathLike[str]) -> ValidationSummary:
    """Check every row of a dataset (any format) without sending anything."""
    options = path.options if isinstance(path, DatasetPath) else FormatOptions()
    real = path.path if isinstance(path, DatasetPath) else Path(path)
    if detect(real, options.format) == "csv" and options.concept_ids == "ids":
        return await validate_file(real)
    summary = ValidationSummary()
    images: set[str] = set()
    labels: set[str] = set()
    async with open_rows(path) as src:
        summary.path = src.path
        summary.columns = list(src.columns)
        async for batch in src.batches():
            for item in batch:
                summary.rows += 1
                if isinstance(item, InvalidRow):
                    summary.invalid.append(item)
                    continue
                images.add(item.input_id)
                labels.update(item.pos_concepts)
                labels.update(item.neg_concepts)
                if item.annotation_id:
                    summary.boxes += 1
                else:
                    summary.image_level_rows += 1
    summary.images = len(images)
    summary.labels = len(labels)
    return summary
