"""Class folders: each image's folder is its class (``cat/*.jpg``, ``train/cat/*.jpg``).

The ImageNet layout, which the official SDK reads with ``Dataset.upload_from_folder``
(one folder, its name the label) and ``ImageNetDataLoader`` (``<split>/<synset>/*``):

* The data path holds class folders (``cat/``, ``dog/``: folders holding images), or
  split folders holding class folders (``train/cat/``, ``val/cat/``): a sub-folder that
  holds no image itself but has sub-folders that do is a split. With ``--format
  classes``, a folder holding only images is one class folder, its own name the class
  (as ``upload_from_folder(labels=True)`` does).
* Each image (a file ending ``.jpg``, ``.jpeg``, ``.png``, ``.bmp``, ``.gif``,
  ``.webp``, ``.tif``, ``.tiff`` or ``.jfif``, in any letter case: the SDK's
  ``upload_from_folder`` skips ``.JPEG``, its ImageNet loader takes it) is one input,
  uploaded as bytes, with its class folder's name as its concept: made an id as class
  names are (``Golden Retriever`` becomes ``golden-retriever``, the name kept); two
  folder names making one id stop the upload before anything is sent. ImageNet's
  ``LOC_synset_mapping.txt`` beside the folders (``n01855672 goose``) names the classes:
  the folder stays the id, the mapping's words become the name.
* The split goes to the input's metadata (``{"split": "train"}``); ``split``
  (``--split NAME``) reads one split, ``dataset_per_split`` puts each input into the
  dataset of its split, as for YOLO.
* What is not read is said: files that are not images, folders inside a class folder
  (named, a few per folder, in a warning: ``strict`` refuses them), empty class folders
  (a warning), class folders named like splits (a warning: their images would get
  ``train`` as a concept), images directly in a split folder or beside the class
  folders (uploaded without a concept, in a note), hidden files and ``Thumbs.db``
  (a note).
* Folders are listed in name order, one at a time; a row's position is its place in
  that walk (splits, then each split's images outside a class folder, then its class
  folders, each folder's images by name), and each folder's first position is fixed
  when the dataset is opened, so a re-run with ``--split`` finds every row where it was.
  Opening lists every folder once (never holding the names of their files) to count the
  images, fingerprint them for the journal and gather what is not read, so the warnings
  come before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ingest import ids
from ingest.errors import SourceError

from .cells import concept_id
from .dataset import Cells, DatasetSource, Item, concept_map, dump, relative
from .fingerprint import FileList
from .imagesize import IMAGE_SUFFIXES

__all__ = ["SPLIT_NAMES", "SYNSETS", "ClassFolderSource"]

SYNSETS = "LOC_synset_mapping.txt"
"""ImageNet's file naming each class folder (``n01855672 goose``)."""

SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing"})
"""Folder names that look like splits (a class folder of such a name is warned about)."""

_LITTER = frozenset({"thumbs.db", "desktop.ini"})
"""Files operating systems leave in folders (and hidden files): a note, not a warning."""

_SIDECARS = (".json", ".xml", ".txt")
"""Per-image annotation files (LabelMe, VOC, YOLO): an image with one beside it is not in
a class folder's layout, so such a folder is not recognised."""

_SHOWN = 5
"""File names a warning lists per folder."""


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _LITTER


def _listed(folder: Path) -> list[os.DirEntry[str]]:
    """What ``folder`` holds, sorted by name."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None


def _first_image(folder: str) -> str | None:
    """The path of an image directly in ``folder`` (the first met), or None."""
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                if _is_image(e.name) and not _hidden(e.name) and e.is_file():
                    return e.path
    except OSError:
        return None
    return None


def _subfolders(folder: Path) -> list[Path]:
    """The folders in ``folder`` (hidden ones aside), by name."""
    try:
        with os.scandir(folder) as entries:
            found = [Path(e.path) for e in entries if not _hidden(e.name) and e.is_dir()]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.name)


def _kind(folder: Path) -> tuple[str, str | None]:
    """``class`` (it holds an image), ``split`` (it holds none, but a sub-folder does) or
    ``""``; and the first image met."""
    image = _first_image(str(folder))
    if image is not None:
        return "class", image
    for sub in _subfolders(folder):
        image = _first_image(str(sub))
        if image is not None:
            return "split", image
    return "", None


def _annotated(image: str) -> bool:
    """True when an annotation file of the image's own name lies beside it."""
    stem = os.path.splitext(image)[0]
    return any(os.path.exists(stem + suffix) for suffix in _SIDECARS)


@dataclass(slots=True)
class _Folder:
    """A folder of images in the walk: its split, its class ("" outside a class folder)."""

    path: Path
    split: str
    name: str
    start: int = 0
    """The position of its first image."""
    count: int = 0
    """Its images, when the dataset was opened."""


@dataclass(slots=True)
class _Unread:
    """What the opening pass found and does not upload, said once it is done."""

    files: dict[str, list[str]] = field(default_factory=dict)
    """Folder -> names of files that are not images (a few shown)."""
    counts: dict[str, int] = field(default_factory=dict)
    nested: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    hidden: int = 0
    loose: dict[str, int] = field(default_factory=dict)
    """Folder -> images in no class folder (uploaded without a concept)."""


class ClassFolderSource(DatasetSource):
    """The rows of a folder of class folders (see the module docs)."""

    format_name = "classes"
    describe = "class folders (CLASS/*.jpg or SPLIT/CLASS/*.jpg)"
    options_read = frozenset({"dataset_per_split", "split"})
    _folders: list[_Folder]
    _splits: list[str]
    _fingerprint: dict[str, Any]
    _cells: Cells

    @staticmethod
    def recognises(path: Path) -> bool:
        """A folder whose sub-folders (or their sub-folders) hold images, with no dataset
        description of another format beside them (a yaml, JSON or XML file, an
        ``annotations`` or ``labels`` folder) and no annotation file beside the first image
        met (``x.json`` next to ``x.jpg``: LabelMe; ``x.xml``, ``x.txt``)."""
        if not path.is_dir() or _described(path):
            return False
        for sub in _subfolders(path):
            _, image = _kind(sub)
            if image is not None:
                return not _annotated(image)
        return False

    def _prepare(self) -> None:
        assert self.path is not None
        root = self.path
        if not root.is_dir():
            raise SourceError(f"{root}: class folders are given by the folder that holds them")
        self._root_with(root)
        unread = _Unread()
        self._folders = self._layout(root, unread)
        self._check_split()
        self._count(root, unread)
        self._say(unread)
        self._class_names(root)
        chosen = [f for f in self._folders if self._chosen(f)]
        total = sum(f.count for f in chosen)
        self.stats.update(rows_total=total, images_total=total)
        self._cells = Cells("file", self._names)
        self.columns = self._cells.columns

    # -- the layout ------------------------------------------------------------

    def _layout(self, root: Path, unread: _Unread) -> list[_Folder]:
        """The folders of images, in the walk's order (see the module docs)."""
        kinds = [(sub, _kind(sub)[0]) for sub in _subfolders(root)]
        splits = [sub for sub, kind in kinds if kind == "split"]
        classes = [sub for sub, kind in kinds if kind == "class"]
        self._splits = []
        if splits:
            out: list[_Folder] = []
            for sub, kind in kinds:
                if not kind:
                    unread.empty.append(self._shown(sub))
                    continue
                # beside split folders, a folder holding images is a split too: its images
                # are in no class folder, its sub-folders are its class folders
                self._splits.append(sub.name)
                out.append(_Folder(sub, sub.name, ""))
                out.extend(_Folder(cls, sub.name, cls.name) for cls in _subfolders(sub))
            return [_Folder(root, "", ""), *out]
        if classes:
            out = [_Folder(root, "", "")]
            for sub, kind in kinds:
                if kind:
                    out.append(_Folder(sub, "", sub.name))
                else:
                    unread.empty.append(self._shown(sub))
            named = sorted(n for n in (s.name for s in classes) if n.lower() in SPLIT_NAMES)
            if named:
                self.stats.warn(
                    f"{root}: the class folders {', '.join(repr(n) for n in named)} are named "
                    "like splits; their images get those names as concepts (split folders hold "
                    "class folders: SPLIT/CLASS/*.jpg)"
                )
            return out
        if _first_image(str(root)) is not None:
            # a folder of images alone: itself the class (the SDK's upload_from_folder)
            self.stats.note(
                f"{root}: the folder holds images and no class folder: its name "
                f"{root.name!r} is their class"
            )
            return [_Folder(root, "", root.name)]
        raise SourceError(
            f"{root}: no class folders; expected CLASS/*.jpg or SPLIT/CLASS/*.jpg (folders "
            "named after each class, holding its images)"
        )

    def _check_split(self) -> None:
        options = self.options
        held = ", ".join(repr(n) for n in self._splits) or "none (class folders only)"
        if options.split is not None and options.split not in self._splits:
            raise SourceError(f"{self.path}: no split {options.split!r}; its splits are {held}")
        if not options.dataset_per_split:
            return
        if not self._splits:
            self.stats.warn(
                f"--dataset-per-split: {self.path} has no split folders (SPLIT/CLASS/*.jpg); "
                "no dataset is filled"
            )
        for split in self._splits:
            if not ids.is_valid_id(split):
                raise SourceError(
                    f"{self.path}: the split folder {split!r} cannot name a dataset "
                    "(--dataset-per-split): ids may use only A-Z, a-z, 0-9, '_' and '-'"
                )

    def _count(self, root: Path, unread: _Unread) -> None:
        """The opening pass: each folder listed once for its images (counted and
        fingerprinted) and what it holds that is not read."""
        files = FileList()
        synsets = root / SYNSETS
        if synsets.is_file():
            files.add(synsets)
        line = 2
        for folder in self._folders:
            folder.start = line
            shown = self._shown(folder.path)
            for entry in _listed(folder.path):
                name = entry.name
                if _hidden(name):
                    unread.hidden += 1
                elif entry.is_dir():
                    if folder.name:  # (in the root or a split: a folder walked on its own)
                        unread.nested.append(self._shown(Path(entry.path)))
                elif not entry.is_file():
                    continue
                elif _is_image(name):
                    folder.count += 1
                    files.add(Path(entry.path))
                elif not (folder.path == root and name == SYNSETS):
                    unread.counts[shown] = unread.counts.get(shown, 0) + 1
                    listed = unread.files.setdefault(shown, [])
                    if len(listed) < _SHOWN:
                        listed.append(name)
            if folder.name and not folder.count:
                unread.empty.append(shown)
            if not folder.name and folder.count:
                unread.loose[shown] = folder.count
            line += folder.count
        self._fingerprint = files.fingerprint(self.format_name)

    def _say(self, unread: _Unread) -> None:
        for shown, names in unread.files.items():
            count = unread.counts[shown]
            more = f" and {count - len(names):,} more" if count > len(names) else ""
            self.stats.warn(
                f"{shown}: {count:,} file(s) that are not images are not uploaded: "
                f"{', '.join(names)}{more}"
            )
        if unread.nested:
            self.stats.warn(
                f"{len(unread.nested):,} folder(s) inside class folders are not read (a class "
                f"folder holds its images directly): {_few(unread.nested)}"
            )
        if unread.empty:
            self.stats.warn(f"{len(unread.empty):,} folder(s) hold no images: {_few(unread.empty)}")
        for shown, count in unread.loose.items():
            self.stats.note(
                f"{shown}: {count:,} image(s) in no class folder are uploaded without a concept"
            )
        if unread.hidden:
            self.stats.note(
                f"{unread.hidden:,} hidden or system file(s) (.DS_Store, Thumbs.db...) are "
                "not uploaded"
            )

    def _class_names(self, root: Path) -> None:
        """Concept id -> name for every class folder; ImageNet's mapping names them."""
        folders = sorted({f.name for f in self._folders if f.name})
        self._names = concept_map(folders, str(root))
        synsets = root / SYNSETS
        if not synsets.is_file():
            return
        named: dict[str, str] = {}
        try:
            text = synsets.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{synsets}: cannot read the file: {exc}") from None
        for n, raw in enumerate(text.splitlines(), start=1):
            synset, _, words = raw.strip().partition(" ")
            if not synset:
                continue
            if not words.strip():
                raise SourceError(f"{synsets}: line {n}: expected 'FOLDER NAME', got {raw!r}")
            named[synset] = words.strip()
        unnamed = [f for f in folders if f not in named]
        for folder in folders:
            if folder in named:
                self._names[concept_id(folder)] = named[folder]
        if unnamed:
            self.stats.note(
                f"{synsets}: {len(unnamed):,} class folder(s) are not in it and keep their "
                f"own name: {_few(unnamed)}"
            )

    def _shown(self, folder: Path) -> str:
        return relative(folder, self.base_dir)

    def _chosen(self, folder: _Folder) -> bool:
        chosen = self.options.split
        return chosen is None or folder.split == chosen

    # -- the rows --------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """Every image (and ImageNet's mapping), as the opening pass found them."""
        return self._fingerprint

    def _items(self) -> Generator[list[Item], None, None]:
        make = self._cells.make
        root = self.base_dir
        per_split = self.options.dataset_per_split
        for folder in self._folders:
            if not folder.count or not self._chosen(folder):
                continue  # another split's images keep their positions
            metadata = dump({"split": folder.split}) if folder.split else ""
            dataset = folder.split if per_split else ""
            concept = concept_id(folder.name) if folder.name else ""
            labelled = partial(make, concept=concept, metadata=metadata, dataset=dataset)
            line = folder.start
            prefix = relative(folder.path, root) + "/"  # (resolved once per folder)
            for entry in _listed(folder.path):
                name = entry.name
                if _is_image(name) and not _hidden(name) and entry.is_file():
                    yield [(line, labelled(prefix + name), "", "")]
                    line += 1


def _described(path: Path) -> bool:
    """True when ``path`` holds another format's description of its images: a yaml, JSON
    or XML file, or an ``annotations`` or ``labels`` folder (any letter case)."""
    try:
        with os.scandir(path) as entries:
            for e in entries:
                name = e.name.lower()
                if name.endswith((".yaml", ".yml", ".json", ".xml")) and e.is_file():
                    return True
                if name in ("annotations", "labels") and e.is_dir():
                    return True
    except OSError:
        return False
    return False


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN:,} more" if len(names) > _SHOWN else "")
