"""A YOLO dataset's yaml: which file it is, and what its keys say.

Ultralytics names the yaml after the dataset (``coco8.yaml``, ``VOC.yaml``), not
always ``data.yaml``, and keeps it beside ``images/`` and ``labels/``:

* Given a folder, every ``*.yaml``/``*.yml`` in it is read; the one with a dataset's keys
  (``names``, ``nc``, ``train``, ``val`` or ``test``) is the dataset's, whatever its
  name. Several such files are refused, listed; other yaml files are named in a note.
* ``names``: a list, or a map of class number to name (numbered 0, 1, 2... without
  gaps). ``nc``, when given, must agree with ``names``.
* ``path`` is the dataset's root (relative to the yaml's folder). Ultralytics resolves a
  relative ``path`` under its own datasets folder, so a yaml written for that
  (``path: coco8``, ``path: ../datasets/coco8``) names a folder that is not beside it:
  when that folder does not exist and the splits are found beside the yaml, they are
  read there (a note says so). A split entry starting with ``../`` that is not found
  is looked for without it, as Ultralytics does (Roboflow's exports write
  ``train: ../train/images``).
* ``train``, ``val`` (or ``validation``) and ``test``: a folder of images, a ``.txt``
  list of image paths, or a list of either.
* ``download`` is not used (the files are read from disk; a note says so). A key that is
  a near miss of one ingest reads (``name``, ``trian``) is an error with a "did you
  mean"; any other key is a warning (``strict`` refuses it): nothing in the yaml is
  dropped without a word.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import SourceError

from .columns import near_miss

__all__ = ["SPLITS", "YoloYaml", "find_yaml", "load_yaml"]

SPLITS = ("train", "val", "test")
"""The splits a yaml names, in the order they are read."""

_DATASET_KEYS = frozenset({"names", "nc", *SPLITS})
"""Keys that make a yaml a dataset's."""

_READ_KEYS = ("path", *SPLITS, "validation", "names", "nc")

_NOT_USED = {
    "download": "the dataset is read from the files on disk",
}
"""Keys ingest knows and does not use, and why."""


def load_yaml(path: Path) -> Any:
    """The yaml document at ``path`` (any value); :class:`SourceError` with the position
    when it is not valid YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SourceError(f"{path}: {where}not valid YAML: {problem}") from None


def find_yaml(folder: Path, notes: list[str]) -> tuple[Path, dict[str, Any]] | None:
    """The dataset's yaml in ``folder`` and its document, or ``None`` when there is none;
    other yaml files are named in ``notes``."""
    try:
        candidates = sorted(
            Path(e.path)
            for e in os.scandir(folder)
            if e.name.lower().endswith((".yaml", ".yml")) and e.is_file()
        )
    except OSError as exc:
        raise SourceError(f"{folder}: cannot list the folder: {exc.strerror or exc}") from None
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in candidates:
        data = load_yaml(path)
        if isinstance(data, dict) and _DATASET_KEYS.intersection(data):
            found.append((path, data))
        else:
            notes.append(
                f"{path}: no names, nc, train, val or test: not a dataset's yaml, not read"
            )
    if len(found) > 1:
        listed = ", ".join(p.name for p, _ in found)
        raise SourceError(
            f"{folder}: several yaml files describe a dataset ({listed}); "
            "give the one to read as the data path"
        )
    return found[0] if found else None


@dataclass
class YoloYaml:
    """What a dataset's yaml says (see the module docs)."""

    path: Path
    root: Path = field(init=False)
    """The dataset's root folder."""
    splits: list[tuple[str, list[Path]]] = field(init=False)
    """Each split's name and its folders or list files."""
    names: list[str] | None = field(init=False)
    """The class names, or ``None`` when the yaml gives none."""
    nc: int | None = field(init=False)
    """The number of classes, when the yaml gives it."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path, data: Any = None) -> YoloYaml:
        """The yaml at ``path`` (``data``: its document, if already loaded)."""
        out = cls(path)
        out._read(load_yaml(path) if data is None else data)
        return out

    def _read(self, data: Any) -> None:
        where = self.path
        if not isinstance(data, dict):
            raise SourceError(f"{where}: expected a YAML mapping with names and train/val/test")
        for key in data:
            if str(key) in _READ_KEYS:
                continue
            if str(key) in _NOT_USED:
                self.notes.append(f"{where}: {key} is not used: {_NOT_USED[str(key)]}")
                continue
            meant = near_miss(str(key), [k for k in _READ_KEYS if k not in data])
            if meant is not None:
                raise SourceError(
                    f"{where}: key {str(key)!r} is not one ingest reads; did you mean {meant!r}?"
                )
            self.warnings.append(f"{where}: key {str(key)!r} is not one ingest reads; not used")
        self.names = _names(data.get("names"), where)
        nc = data.get("nc")
        if nc is not None and (not isinstance(nc, int) or isinstance(nc, bool) or nc < 1):
            raise SourceError(f"{where}: nc must be the number of classes, not {nc!r}")
        if nc is not None and self.names is not None and nc != len(self.names):
            raise SourceError(
                f"{where}: nc is {nc} but names has {len(self.names)} classes; make them agree"
            )
        self.nc = nc
        if "validation" in data and "val" not in data:
            data = {**data, "val": data["validation"]}
        entries = {
            split: [str(e) for e in (v if isinstance(v, list) else [v]) if e is not None]
            for split in SPLITS
            if (v := data.get(split))
        }
        if not entries:
            raise SourceError(f"{where}: names no image folder (train, val or test)")
        self.root = self._root(data.get("path"), entries)
        self.splits = [
            (split, [self._entry(self.root, e) for e in values])
            for split, values in entries.items()
        ]

    def _root(self, given: Any, entries: dict[str, list[str]]) -> Path:
        here = self.path.parent
        if not given:
            return here
        root = Path(str(given))
        if not root.is_absolute():
            root = here / root
        if root.is_dir():
            return root
        first = next(iter(entries.values()))[0]
        if self._entry(here, first).exists():
            self.notes.append(
                f"{self.path}: path {str(given)!r} is not a folder here ({root}); the splits "
                f"are read beside the yaml, where they are"
            )
            return here
        return root

    def _entry(self, root: Path, entry: str) -> Path:
        full = Path(entry) if Path(entry).is_absolute() else root / entry
        if not full.exists() and entry.startswith("../") and (root / entry[3:]).exists():
            self.notes.append(
                f"{self.path}: {entry!r} is read as {entry[3:]!r} (as Ultralytics does)"
            )
            return root / entry[3:]
        return full


def _names(names: Any, where: Path) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, list):
        return [str(n) for n in names]
    if isinstance(names, dict):
        try:
            by_number = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise SourceError(f"{where}: names must map class numbers to names") from None
        if sorted(by_number) != list(range(len(by_number))):
            raise SourceError(f"{where}: names must number the classes 0, 1, 2... without gaps")
        return [by_number[i] for i in range(len(by_number))]
    raise SourceError(f"{where}: names must be a list of class names or a map of numbers to names")
