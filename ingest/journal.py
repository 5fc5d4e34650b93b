"""Resume state: which rows of a CSV already reached the service.

The journal is an append-only text file, by default beside the CSV and named after
it (``DATA.csv.ingest-state``). Its first line is a JSON header::

    {"format": "ingest-journal", "version": 1, "source": {...}, "target": {...}}

``source`` fingerprints the CSV (size, ``mtime_ns`` and a hash of its first and last
MiB); ``target`` names where the rows went (API base, user, app, dataset; never the
token). Every later line lists line numbers of rows that ended *landed* or *already
present*, as space-separated numbers and ``first-last`` ranges. Failed and invalid
rows are never recorded, so a re-run retries them.

Lines are buffered and appended by :meth:`Journal.flush` (write, then ``fsync``),
which the command line calls as batches complete (at most every half second). A
kill at any moment loses at most the rows since the last flush; those are sent
again on the re-run, harmlessly, since input and annotation ids are deterministic.
A torn last line (killed mid-write) is ignored when loading.

Loading keeps the finished rows as a bitmap (one bit per line: 5 million rows take
about 625 KB) and :meth:`Journal.skip` answers whether a row is done.

A journal is kept after a run in which every row ended well: running the same
command again then skips every row and sends nothing. Pass ``restart=True``
(``--restart``) to ignore an old journal and start a new one.

When the CSV changed since the journal was written, or the journal was written
for another app or server, :meth:`Journal.open` raises
:class:`~ingest.errors.JournalError` instead of silently skipping the wrong rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ingest.errors import JournalError

__all__ = [
    "FORMAT",
    "VERSION",
    "Bitmap",
    "Journal",
    "default_state_path",
    "fingerprint",
]

FORMAT = "ingest-journal"
VERSION = 1
_MIB = 1 << 20


def default_state_path(csv_path: str | os.PathLike[str]) -> Path:
    """``DATA.csv`` -> ``DATA.csv.ingest-state`` (same folder)."""
    p = Path(csv_path)
    return p.with_name(p.name + ".ingest-state")


def fingerprint(csv_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Size, ``mtime_ns`` and a SHA-256 of the first and last MiB of the file."""
    try:
        with open(csv_path, "rb") as fh:
            st = os.fstat(fh.fileno())
            h = hashlib.sha256()
            h.update(fh.read(_MIB))
            if st.st_size > _MIB:
                fh.seek(max(_MIB, st.st_size - _MIB))
                h.update(fh.read(_MIB))
    except OSError as exc:
        raise JournalError(f"{csv_path}: cannot read the file: {exc.strerror or exc}") from None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()[:32]}


class Bitmap:
    """A growable set of non-negative ints, one bit each."""

    __slots__ = ("_bits", "count")

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0
        """How many ints are in the set."""

    def add(self, n: int) -> None:
        byte, bit = n >> 3, 1 << (n & 7)
        bits = self._bits
        if byte >= len(bits):
            bits.extend(bytes(max(byte + 1 - len(bits), len(bits) // 2, 64)))
        if not bits[byte] & bit:
            bits[byte] |= bit
            self.count += 1

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int) or n < 0:
            return False
        byte = n >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (n & 7)))

    def __len__(self) -> int:
        return self.count

    def __sizeof__(self) -> int:
        """Memory held, the bits included (what :func:`sys.getsizeof` reports)."""
        return object.__sizeof__(self) + self._bits.__sizeof__()


def _format_lines(lines: list[int]) -> str:
    """Sorted numbers as ``2 5-9 12``."""
    lines.sort()
    out: list[str] = []
    start = prev = lines[0]
    for n in lines[1:]:
        if n == prev + 1 or n == prev:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    out.append(str(start) if start == prev else f"{start}-{prev}")
    return " ".join(out)


def _parse_lines(text: str, into: Bitmap) -> None:
    for token in text.split():
        first, sep, last = token.partition("-")
        a = int(first)
        b = int(last) if sep else a
        if a < 0 or b < a or b - a > 100_000_000:
            raise ValueError(token)
        for n in range(a, b + 1):
            into.add(n)


def _describe_target(target: Mapping[str, Any]) -> str:
    app = target.get("app_id") or "the API key's app"
    user = f"user {target['user_id']!r}, " if target.get("user_id") else ""
    ds = f", dataset {target['dataset_id']!r}" if target.get("dataset_id") else ""
    how = f", concept cells read as {target['concept_ids']}" if target.get("concept_ids") else ""
    images = f", images from {target['images']}" if target.get("images") else ""
    return f"{user}app {app!r} at {target.get('base')}{ds}{how}{images}"


class Journal:
    """The rows of one CSV that already reached one target; see the module docs.

    ::

        journal = Journal.open("data.csv", target=Journal.target_of(config))
        ...                                   # ing.stream(path, skip=journal.skip)
        journal.add(outcome.line)             # for each landed or present row
        journal.flush()                       # as batches complete, and at the end
        journal.close()
    """

    def __init__(self, path: Path, done: Bitmap, header: dict[str, Any]) -> None:
        self.path = path
        self.done = done
        self.header = header
        self.resumed = done.count
        """Rows already done when the journal was opened."""
        self._pending: list[int] = []
        self._lock = threading.Lock()
        self._fh: Any = None

    # -- opening ---------------------------------------------------------------

    @staticmethod
    def target_of(config: Any) -> dict[str, Any]:
        """Where rows go, from a :class:`~ingest.config.Config` (never the token)."""
        return {
            "base": str(config.base).rstrip("/"),
            "user_id": config.user_id or None,
            "app_id": config.app_id or None,
            "dataset_id": config.dataset_id or None,
        }

    @classmethod
    def open(
        cls,
        csv_path: str | os.PathLike[str],
        *,
        target: Mapping[str, Any],
        state_path: str | os.PathLike[str] | None = None,
        restart: bool = False,
    ) -> Journal:
        """Load the journal of ``csv_path`` (or start one) and open it for appending.

        Raises :class:`JournalError` when the journal belongs to another version of
        the file or another target, or cannot be read or written.
        """
        path = Path(state_path) if state_path is not None else default_state_path(csv_path)
        source = fingerprint(csv_path)
        header = {"format": FORMAT, "version": VERSION, "source": source, "target": dict(target)}
        done = Bitmap()
        keep = 0  # bytes of the existing file to keep (0: start afresh)
        if not restart and path.exists():
            keep = cls._load(path, csv_path, header, done)
        journal = cls(path, done, header)
        try:
            fh: Any
            if keep:
                fh = open(path, "r+b")  # noqa: SIM115 - kept open for the run
                fh.truncate(keep)  # drop a torn last line
                fh.seek(keep)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = open(path, "wb")  # noqa: SIM115
                fh.write(json.dumps(header, sort_keys=True).encode() + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise JournalError(
                f"cannot write the journal {path}: {exc.strerror or exc}; "
                "choose another place with --state PATH"
            ) from None
        journal._fh = fh
        return journal

    @staticmethod
    def _load(
        path: Path, csv_path: str | os.PathLike[str], header: dict[str, Any], done: Bitmap
    ) -> int:
        """Read ``path`` into ``done``; returns how many bytes are sound."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise JournalError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
        restart = "re-run with --restart to ignore it and start a new journal"
        first, nl, _ = data.partition(b"\n")
        if not nl:
            # killed before the header was complete: nothing was recorded
            return 0
        try:
            old = json.loads(first)
            if not isinstance(old, dict) or old.get("format") != FORMAT:
                raise ValueError
        except ValueError:
            raise JournalError(
                f"{path} is not an ingest journal; {restart}, or pick another file with --state"
            ) from None
        if old.get("version") != VERSION:
            raise JournalError(
                f"the journal {path} has format version {old.get('version')}, "
                f"this ingest writes version {VERSION}; {restart}"
            )
        was, now = old.get("source") or {}, header["source"]
        if was != now:
            if was.get("size") != now["size"]:
                what = f"its size went from {was.get('size')} to {now['size']} bytes"
            elif was.get("sha256") != now["sha256"]:
                what = "its content differs"
            else:
                what = "it was modified (its modification time differs)"
            raise JournalError(
                f"{csv_path} changed since its journal {path} was written ({what}), so the "
                f"journal's record of finished rows may no longer match the file's lines; "
                f"{restart} (every row is sent again; rows already on the server are "
                "recognised by their ids and not duplicated)"
            )
        if (old.get("target") or {}) != header["target"]:
            raise JournalError(
                f"the journal {path} records an upload to {_describe_target(old['target'])}, "
                f"not to {_describe_target(header['target'])}; {restart}, "
                "or give this upload its own journal with --state PATH"
            )
        sound = len(first) + 1
        pos = sound
        while pos < len(data):
            end = data.find(b"\n", pos)
            if end < 0:
                break  # torn last line: killed mid-write
            try:
                _parse_lines(data[pos:end].decode("ascii"), done)
            except ValueError:
                if data.find(b"\n", end + 1) < 0 and not data[end + 1 :].strip():
                    break  # a damaged last line (crash mid-write): ignore it
                raise JournalError(
                    f"the journal {path} is damaged at byte {pos}; {restart}"
                ) from None
            pos = sound = end + 1
        return sound

    # -- recording -------------------------------------------------------------

    def skip(self, line: int) -> bool:
        """True when row ``line`` already landed in an earlier run (or this one)."""
        return line in self.done

    def add(self, line: int) -> None:
        """Record that row ``line`` ended landed or present (written at the next flush)."""
        self._pending.append(line)

    @property
    def pending(self) -> int:
        """Rows recorded but not yet flushed."""
        return len(self._pending)

    def take(self) -> list[int]:
        """Hand over the recorded rows for :meth:`write` (call from the recording thread)."""
        lines, self._pending = self._pending, []
        return lines

    def write(self, lines: list[int]) -> None:
        """Append ``lines`` and ``fsync``; safe to run in a worker thread."""
        if not lines:
            return
        with self._lock:
            if self._fh is None:
                raise JournalError(f"the journal {self.path} is closed")
            text = _format_lines(lines)
            try:
                self._fh.write(text.encode("ascii") + b"\n")
                self._fh.flush()
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise JournalError(
                    f"cannot write the journal {self.path}: {exc.strerror or exc}"
                ) from None
            for n in lines:
                self.done.add(n)

    def flush(self) -> None:
        """Append the recorded rows and ``fsync``."""
        self.write(self.take())

    def close(self) -> None:
        """Flush and close (idempotent)."""
        try:
            if self._fh is not None:
                self.flush()
        finally:
            with self._lock:
                fh, self._fh = self._fh, None
                if fh is not None:
                    fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
