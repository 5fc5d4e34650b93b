"""What the resume journal fingerprints for a source: its file, or a list of its files.

A CSV or COCO file is fingerprinted by the journal itself; a folder's files (every
label file and image) are listed - name, size and modification time of each, hashed -
by :class:`FileList` and kept in a manifest beside the journal (:func:`journal_file`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from ingest.errors import SourceError

__all__ = ["FileList", "Fingerprinted", "journal_file"]


class FileList:
    """The fingerprint of files given one at a time (a file that is gone is left out)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.files = 0
        self.bytes = 0

    def add(self, path: Path) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        self.files += 1
        self.bytes += st.st_size
        self._hash.update(
            f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(errors="surrogateescape")
        )

    def fingerprint(self, format_name: str) -> dict[str, Any]:
        return {
            "format": format_name,
            "files": self.files,
            "bytes": self.bytes,
            "sha256": self._hash.hexdigest(),
        }


class Fingerprinted(Protocol):
    """What :func:`journal_file` needs of a source."""

    @property
    def path(self) -> Path | None: ...

    def fingerprint(self) -> dict[str, Any]: ...


def journal_file(rows: Fingerprinted, state_path: str | os.PathLike[str]) -> Path:
    """The file whose fingerprint the journal keeps for ``rows``.

    A CSV or COCO file is its own; a folder's files are listed (name, size, time of
    every label file and image: the source's ``fingerprint()``) in ``STATE.files``,
    rewritten only when that changed, so a changed file makes the journal refuse to
    resume as a changed CSV does.
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
