"""What ingest would send, written as its own CSV: :class:`CsvExport`.

``ingest validate DATA --write-csv OUT`` writes the valid rows of any source - a COCO
file, a YOLO or VOC dataset, a CSV - in ingest's CSV format, the cells the failures file
uses (each row's cells as its reader made them), so that a dataset can be looked at,
diffed or edited before it is sent, and uploading ``OUT`` stores what uploading ``DATA``
stores: the same inputs and annotations under the same ids. To keep that promise the
export changes cells only where ``OUT``'s place or the reading options require:

* ``file`` cells are relative to the CSV's folder. When ``OUT`` is not in the folder
  the source's cells are relative to, they are written relative to ``OUT``'s folder
  (which must hold the images, at any depth), and an ``input_id`` column keeps each
  input's id (a local file's id is made from its path as written).
* Concept cells read as names (``concept_ids="names"``) are written as the ids they
  became, with their names in ``concept_names``.
* The failures file's own ``line`` and ``error`` columns are left out; invalid rows
  are not written (``validate`` lists them).

The file is written beside ``OUT`` under a temporary name and renamed when complete:
a read that fails leaves no partial CSV.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row

from .base import RowSource
from .columns import FAILURE_COLUMNS
from .dataset import dump

__all__ = ["CsvExport"]


class CsvExport:
    """Writes the valid rows of an opened ``source`` to ``path`` (see the module docs)."""

    def __init__(self, path: str | os.PathLike[str], source: RowSource) -> None:
        self.path = Path(path)
        self.rows = 0
        """Rows written so far."""
        if source.path is not None and self.path.resolve() == source.path.resolve():
            raise SourceError(f"{self.path} is the data being read; write the CSV elsewhere")
        out_dir = self.path.parent.resolve()
        base = source.base_dir.resolve()
        columns = [c for c in source.columns if c not in FAILURE_COLUMNS]
        self._rebase = "file" in columns and base != out_dir
        if self._rebase and not base.is_relative_to(out_dir):
            raise SourceError(
                f"{self.path}: a CSV's file paths are relative to its folder, and the images "
                f"are under {base}: write it there or in a folder above it"
            )
        options = source.dataset.options if source.dataset is not None else None
        self._names = options is not None and options.concept_ids == "names"
        self._out_dir = out_dir
        self._taken = columns
        self.columns = list(columns)
        if self._names and "concept_names" not in columns:
            self.columns.append("concept_names")
        if self._rebase and "input_id" not in columns:
            self.columns.append("input_id")
        self._tmp = self.path.with_name(self.path.name + ".part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] | None = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise SourceError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._writer: Any = csv.writer(self._fh)
        self._writer.writerow(self.columns)

    def write(self, batch: Sequence[Row | InvalidRow]) -> None:
        """Write the valid rows of ``batch``."""
        write = self._writer.writerow
        for item in batch:
            if isinstance(item, Row):
                write(self._cells(item))
                self.rows += 1

    def _cells(self, row: Row) -> list[str]:
        raw = row.raw
        cells = {c: raw.get(c, "") for c in self._taken}
        if self._rebase and row.path:
            cells["file"] = Path(os.path.relpath(row.path, self._out_dir)).as_posix()
            cells["input_id"] = row.input_id
        if self._names:
            names = row.concept_names or {}
            concepts = (*row.pos_concepts, *row.neg_concepts)
            if "pos_concepts" in cells:
                cells["pos_concepts"] = "|".join(row.pos_concepts)
            if "neg_concepts" in cells:
                cells["neg_concepts"] = "|".join(row.neg_concepts)
            named = {c: names[c] for c in concepts if names.get(c, c) != c}
            cells["concept_names"] = dump(named)
        return [cells.get(c, "") for c in self.columns]

    def commit(self) -> None:
        """Finish the file and put it in place."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        try:
            fh.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise SourceError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def discard(self) -> None:
        """Leave no partial file (idempotent)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()
            self._tmp.unlink(missing_ok=True)
