"""What the resume journal fingerprints for a source: its file, or a list of its files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ingest.errors import SourceError

from .base import RowSource

__all__ = ["journal_file"]


def journal_file(rows: RowSource, state_path: str | os.PathLike[str]) -> Path:
    """The file whose fingerprint the journal keeps for ``rows``.

    A CSV or COCO file is its own; a folder's files are listed (name, size, time of
    every label file and image: :meth:`~ingest.source.base.RowSource.fingerprint`) in
    ``STATE.files``, rewritten only when that changed, so a changed file makes the
    journal refuse to resume as a changed CSV does.
    """
    assert rows.path is not None, "an iterable has no file to fingerprint"
    if rows.path.is_file():
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
