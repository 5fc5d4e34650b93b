"""YOLO datasets: a yaml (or ``images/`` and ``labels/``) and one label file per image.

* The dataset: its yaml, whatever its name (``data.yaml``, ``coco8.yaml``: the rules
  are in :mod:`.yolodata`), giving ``path``, the ``train``/``val``/``test`` image
  folders or list files and ``names`` as a list or an ``{index: name}`` map; or a
  folder holding ``images/`` and ``labels/`` without a yaml (splits are the
  sub-folders of ``images/``). Class names come from the yaml, else from
  ``classes.txt`` (beside ``images/`` or in ``labels/``); a dataset with no names
  anywhere is refused, unless the class numbers are asked for as the concepts
  (``class_names="numbers"``, ``--class-names numbers``).
* Each image's label file is the image's path with its last ``images`` folder
  replaced by ``labels`` and the suffix by ``.txt`` (Ultralytics' rule). Its rows are
  ``class cx cy w h`` (a box, normalised) or ``class x1 y1 x2 y2 ...`` (a segment:
  a polygon of 3 or more normalised points). An image without a label file, or with
  an empty one, is still uploaded (an image-level row).
* Images are local files, uploaded as bytes; a row's position is its place in the
  walk (splits in order, files sorted by name, label lines in order), stable while the
  files do not change (a segment row has two: its box's and its polygon's, whatever
  ``--regions``). The split goes to the input's metadata (``{"split": "train"}``).
  The image folders are walked once, when the dataset is opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from functools import partial
from pathlib import Path

from ingest.errors import SourceError

from .cells import concept_id
from .dataset import Cells, DatasetSource, Item, concept_map, dump, relative
from .geometry import polygon_bounds, unit_box
from .imagesize import IMAGE_SUFFIXES, image_size
from .yolodata import YoloYaml, find_yaml

__all__ = ["YoloSource"]


class YoloSource(DatasetSource):
    """The rows of a YOLO dataset (see the module docs)."""

    format_name = "yolo"
    describe = "a YOLO dataset (data.yaml, or images/ and labels/ folders)"
    options_read = frozenset({"regions", "dataset_per_split", "class_names", "split"})
    _yaml: Path | None = None
    _images_of: list[tuple[str, list[str]]]
    """Each split's name and its images' paths (one walk, at opening)."""
    _class_names: list[str] | None = None
    _class_count: int | None = None
    _class_ids: list[str]
    _cells: Cells

    @staticmethod
    def recognises(path: Path) -> bool:
        """A ``.yaml``/``.yml`` file, or a folder holding ``data.yaml`` or ``images/`` and
        ``labels/``."""
        if not path.is_dir():
            return path.suffix.lower() in (".yaml", ".yml")
        if (path / "data.yaml").is_file() or (path / "data.yml").is_file():
            return True
        return (path / "images").is_dir() and (path / "labels").is_dir()

    def _prepare(self) -> None:
        assert self.path is not None
        root, names, count, where = self._layout(self.path)
        names, count, where = self._class_names_of(root, names, count, where)
        chosen = self.options.split
        if chosen is not None and chosen not in (name for name, _ in self._images_of):
            held = ", ".join(repr(name) for name, _ in self._images_of)
            raise SourceError(f"{self.path}: no split {chosen!r}; the dataset's splits are {held}")
        self.stats.update(
            images_total=sum(
                len(paths) for name, paths in self._images_of if chosen in (None, name)
            )
        )
        self._class_names = names
        self._class_count = count
        if names is not None:
            self._names = concept_map(names, where)
            self._class_ids = [concept_id(n) for n in names]
        self._root_with(root)
        self._cells = Cells("file", self._names)
        self.columns = self._cells.columns

    def _layout(self, p: Path) -> tuple[Path, list[str] | None, int | None, str]:
        """Read the yaml (or the folders without one) and walk the image folders, once:
        the rows, the fingerprint and the totals come from ``_images_of``. Returns the
        root, the yaml's names and ``nc``, and where the names were read."""
        notes: list[str] = []
        found = (p, None) if p.is_file() else find_yaml(p, notes)
        if found is None:
            entries = _entries(p / "images")
            top = [e.path for e in entries if e.is_file() and _is_image(e.name)]
            subdirs = [Path(e.path) for e in entries if e.is_dir()]
            # images beside the split folders are a split of their own, without a name
            self._images_of = [("", top)] if top or not subdirs else []
            self._images_of += [(d.name, self._list(d.name, [d])) for d in subdirs]
            for note in notes:
                self.stats.note(note)
            return p, None, None, str(p)
        described = YoloYaml.read(*found)
        for note in [*notes, *described.notes]:
            self.stats.note(note)
        for warning in described.warnings:
            self.stats.warn(warning)
        self._yaml = described.path
        self._images_of = [(split, self._list(split, paths)) for split, paths in described.splits]
        return described.root, described.names, described.nc, str(described.path)

    def _class_names_of(
        self, root: Path, names: list[str] | None, count: int | None, where: str
    ) -> tuple[list[str] | None, int | None, str]:
        """The class names (``None``: the class numbers are the concepts), how many
        classes there are, and where the names come from: the yaml's, else
        ``classes.txt``; none anywhere is refused unless the numbers are asked for."""
        classes = [root / "classes.txt", root / "labels" / "classes.txt"]
        if names is None:
            listed = next((c for c in classes if c.is_file()), None)
            if listed is not None:
                names = [n.strip() for n in listed.read_text(encoding="utf-8").splitlines()]
                names = [n for n in names if n]
                where = str(listed)
        if self.options.class_names == "numbers":
            if names is not None:
                self.stats.note(
                    f"the class names of {where} are not used: the class numbers are the "
                    "concepts (--class-names numbers)"
                )
            return None, count or (len(names) if names is not None else None), where
        if names is None:
            raise SourceError(
                f"{self.path}: no class names; looked for 'names' in "
                f"{self._yaml or f'a yaml file in {self.path}'} and for {classes[0]} and "
                f"{classes[1]}; add them there, or give --class-names numbers to make the "
                "class numbers the concepts"
            )
        return names, count, where

    def _class_id(self, number: int) -> str | None:
        names = self._class_names
        if names is None:  # the class numbers are the concepts
            count = self._class_count
            return str(number) if number >= 0 and (count is None or number < count) else None
        if 0 <= number < len(names):
            return self._class_ids[number]
        return None

    @property
    def _classes(self) -> int | None:
        """How many classes there are, when known."""
        names = self._class_names
        return len(names) if names is not None else self._class_count

    def _list(self, split: str, sources: list[Path]) -> list[str]:
        """The images of one split: its list files' lines and its folders' image files."""
        out: list[str] = []
        for source in sources:
            if source.is_file() and source.suffix.lower() == ".txt":
                base = source.parent
                for text in source.read_text(encoding="utf-8").splitlines():
                    text = text.strip()
                    if text:
                        img = Path(text)
                        out.append(str(img if img.is_absolute() else (base / img)))
            elif source.is_dir():
                out.extend(str(f) for f in _walk(source) if _is_image(f.name))
            else:
                where = self._yaml or self.path
                raise SourceError(f"{where}: the {split or 'image'} folder {source} does not exist")
        return out

    def _images(self) -> Iterator[tuple[str, Path]]:
        for split, paths in self._images_of:
            for path in paths:
                yield split, Path(path)

    def _files(self) -> Iterator[Path]:
        if self._yaml is not None:
            yield self._yaml
        for _, img in self._images():
            yield img
            yield _label_path(img)

    def _items(self) -> Generator[list[Item], None, None]:
        line = 2
        chosen = self.options.split
        for k, (split, img) in enumerate(self._images()):
            if chosen is not None and split != chosen:
                # another split's image keeps its positions, so that each row has the
                # same position whatever --split (one journal serves every split)
                line = self._image_rows(split, img, line, sizes=False)[1]
                if not k & 0x3FF:
                    yield []  # cancellable between thread hops
                continue
            rows, line = self._image_rows(split, img, line)
            yield rows

    def _image_rows(
        self, split: str, img: Path, line: int, *, sizes: bool = True
    ) -> tuple[list[Item], int]:
        """The rows of one image from position ``line``, and the next free position
        (``sizes``: read the image's size to check boxes to one pixel)."""
        options = self.options
        root = self.base_dir
        dataset = split if options.dataset_per_split else ""
        make = partial(self._cells.make, dataset=dataset)
        cell = relative(img, root)
        metadata = dump({"split": split}) if split else ""
        label = _label_path(img)
        shown = relative(label, root)
        rows: list[Item] = []
        try:
            text = label.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            reason = f"{shown}: the label file cannot be read: {exc}"
            return [(line, make(cell, metadata=metadata), "", reason)], line + 1
        size: tuple[int, int] | None = None
        sized = not sizes
        for n, raw in enumerate(text.splitlines(), start=1):
            tokens = raw.split()
            if not tokens:
                continue
            where = f"{shown} line {n}"
            try:
                number = float(tokens[0])
                values = [float(t) for t in tokens[1:]]
            except ValueError:
                rows.append(
                    (
                        line,
                        make(cell, metadata=metadata),
                        "",
                        f"{where}: expected numbers, got {raw.strip()[:60]!r}",
                    )
                )
                line += 1
                continue
            concept = self._class_id(int(number)) if number.is_integer() else None
            if concept is None:
                rows.append(
                    (
                        line,
                        make(cell, metadata=metadata),
                        "pos_concepts",
                        f"{where}: class {tokens[0]} is not one of the dataset's classes"
                        + (f" (0 to {self._classes - 1})" if self._classes else ""),
                    )
                )
                line += 1
                continue
            if not sized:
                size, sized = image_size(img), True
            labelled = partial(make, cell, concept=concept, metadata=metadata)
            if len(values) == 4:
                cx, cy, w, h = values
                box = unit_box((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), size)
                rows.append(_box_row(line, box, labelled, where))
                line += 1
                continue
            if len(values) < 6 or len(values) % 2:
                rows.append(
                    (
                        line,
                        labelled(),
                        "",
                        f"{where}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3...', "
                        f"got {len(values)} numbers after the class",
                    )
                )
                line += 1
                continue
            # a segment row has two positions, its box's and its polygon's, used or
            # not (--regions): a re-run with other regions finds each where it was
            points = _unit_points(values, size)
            if isinstance(points, str):
                rows.append(
                    (
                        line,
                        labelled(),
                        "polygon",
                        f"{where}: {points}",
                    )
                )
                line += 2
                continue
            if options.boxes:
                box = unit_box(polygon_bounds(points), size)
                rows.append(_box_row(line, box, labelled, where))
            if options.polygons:
                rows.append(
                    (
                        line + 1,
                        labelled(polygon=points),
                        "",
                        "",
                    )
                )
            line += 2
        if not rows:
            rows.append((line, make(cell, metadata=metadata), "", ""))
            line += 1
        return rows, line


def _box_row(
    line: int,
    box: tuple[float, float, float, float] | str,
    cells: Callable[..., list[str]],
    where: str,
) -> Item:
    """The row of a box (``cells(box=...)``), or of the reason it is refused."""
    if isinstance(box, str):
        return (line, cells(), "left_col", f"{where}: {box}")
    return (line, cells(box=box), "", "")


def _unit_points(values: list[float], size: tuple[int, int] | None) -> tuple[float, ...] | str:
    tx, ty = (1 / size[0], 1 / size[1]) if size and size[0] and size[1] else (1e-9, 1e-9)
    out: list[float] = []
    for i, v in enumerate(values):
        t = tx if i % 2 == 0 else ty
        if not -t <= v <= 1 + t:  # False for NaN
            what = "x" if i % 2 == 0 else "y"
            return f"point {i // 2 + 1} of the segment has {what} = {v:g}, outside [0, 1]"
        out.append(min(max(v, 0.0), 1.0))
    return tuple(out)


def _label_path(img: Path) -> Path:
    parts = list(img.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return img.with_suffix(".txt")


def _walk(folder: Path) -> Iterator[Path]:
    """Files under ``folder``, sorted by name, depth first (one folder listed at a time)."""
    for entry in _entries(folder):
        if entry.is_dir():
            yield from _walk(Path(entry.path))
        elif entry.is_file():
            yield Path(entry.path)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """What ``folder`` holds, sorted by name."""
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
