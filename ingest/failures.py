"""The failures file: every row that did not reach the service, ready to send again.

A CSV with the input's columns plus ``line`` (the row's line in the file that was
uploaded) and ``error`` (why it failed), one row per failed or invalid row, written as
outcomes arrive. The reader ignores columns it does not know, so::

    ingest upload DATA.failures.csv

retries exactly those rows. The file is created at the first failure, replacing
any older failures file at that path; a run in which nothing failed leaves no
failures file (and removes an older one, which would otherwise be stale).

When the input uses a ``file`` column, paths are relative to the CSV's folder: keep
the failures file beside the CSV (the default) so they still resolve.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ingest.errors import IngestError
from ingest.model import Outcome

__all__ = ["FailuresWriter", "default_failures_path"]

LINE, ERROR = "line", "error"


def default_failures_path(csv_path: str | os.PathLike[str], *, name: str = "failures") -> Path:
    """``DATA.csv`` -> ``DATA.failures.csv`` (same folder); ``name`` another file of rows
    in this format beside the data (``ingest verify``'s ``DATA.resend.csv``)."""
    p = Path(csv_path)
    stem = p.stem if p.suffix.lower() == ".csv" else p.name
    return p.with_name(f"{stem}.{name}.csv")


class FailuresWriter:
    """Streams failed rows into ``path``; see the module docs.

    ``columns`` is the header of the input (``RowSource.columns``); existing
    ``line``/``error`` columns (a failures file being retried) are replaced by fresh ones.
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = [c for c in columns if c not in (LINE, ERROR)]
        self.header = [*self.columns, LINE, ERROR]
        self.count = 0
        """Rows written so far."""
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise IngestError(
                f"cannot write the failures file {self.path}: {exc.strerror or exc}; "
                "choose another place with --failures PATH"
            ) from None
        self._writer = csv.writer(self._fh)
        self._writer.writerow(self.header)

    def write(self, outcome: Outcome) -> None:
        """Add one failed row (buffered until :meth:`flush`)."""
        if self._fh is None:
            self._open()
        raw = outcome.raw
        self._writer.writerow(
            [*(raw.get(c, "") for c in self.columns), outcome.line, _one_line(outcome.error)]
        )
        self.count += 1

    def flush(self) -> None:
        """Hand what was written to the OS (cheap; called once per batch)."""
        if self._fh is not None:
            self._fh.flush()

    def close(self, *, remove_stale: bool = True) -> None:
        """Close the file; with no failure at all, remove a stale one from an older run.

        ``remove_stale=False`` (an interrupted run) leaves an older file alone.
        """
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()
        elif remove_stale and self.count == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()

    @property
    def written(self) -> bool:
        """True when this run wrote a failures file."""
        return self.count > 0

    def __enter__(self) -> FailuresWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(remove_stale=exc_type is None)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\r" in text else text
