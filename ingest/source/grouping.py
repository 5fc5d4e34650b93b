"""Put every image's rows together, whatever their order, in bounded memory.

Real files are rarely grouped by image: exports sorted by class, per-class files
concatenated, COCO annotations ordered by category. Two pieces:

* :func:`scan_order` is the counting pass over a CSV: it counts the records and the
  distinct images, and tells whether the rows of each image already follow each other
  (then nothing else happens: no extra pass, no temp file). It remembers one 64-bit
  hash per image (8 bytes each), never the rows.
* :class:`DiskGrouper` groups records by key on disk: a hash partition (records go to
  one of *n* bucket files by their key's hash, *n* chosen so that one bucket is about
  :data:`BUCKET_BYTES`), then each bucket in turn is read back, grouped in memory and
  deleted. One write and one read of the data, no sort; memory holds one bucket and
  small write buffers, whatever the file's size or order. The temp files hold the
  records as msgpack (about the size of the CSV text: the file is never copied twice),
  and they live in their own folder under ``tmp_dir``, removed when the grouper
  closes (also on errors and cancellation). A folder left by a process that was
  killed (``kill -9`` leaves no chance to clean up) is removed by the next grouper
  that starts in the same ``tmp_dir``.

:class:`ImageGrouping` puts the two together for a CSV source: the counting pass, and
the grouping on disk when the pass finds an image's rows scattered.

Hash partitioning was chosen over sorted runs merged with :func:`heapq.merge` and over
:mod:`sqlite3`: the order inside a group is the file's order without sorting, there is
one pass of writing and one of reading, and no index doubles the temp space.
"""

from __future__ import annotations

import codecs
import csv
import errno
import os
import shutil
import struct
import tempfile
import time
from array import array
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import msgspec

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row

from .base import SourceStats
from .csvstream import Record, read_chunks
from .validate import Validator

__all__ = [
    "BUCKET_BYTES",
    "DiskGrouper",
    "ImageGrouping",
    "OrderScan",
    "scan_order",
]

BUCKET_BYTES = 512 * 1024
"""Data bytes per bucket file: what one bucket costs in memory while it is grouped (its
records decoded take about ten times as much)."""

MAX_BUCKETS = 8192
"""Most bucket files (past it buckets grow: about 4 GiB of data before they do)."""

_BUFFERED = 8 * 1024 * 1024
"""Write buffers of all buckets together hold at most about this many bytes."""

_PREFIX = "ingest-group-"
_FRAME = struct.Struct("<I")
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@dataclass(slots=True)
class OrderScan:
    """What the counting pass found: records, images, and whether they are grouped."""

    records: int = 0
    """Data records (rows, valid or not; blank lines not counted)."""
    images: int = 0
    """Distinct images the records name (by their cells as written, see :func:`image_key`)."""
    stretches: int = 0
    """Runs of consecutive rows naming one image."""
    grouped: bool = True
    """True when no image's rows come back after another image's."""
    size: int = 0
    """The file's size in bytes."""
    complete: bool = True
    """False when the pass stopped at the first image whose rows came back (asked with
    ``until_scattered``): ``grouped`` is then False and the counts cover the rows read."""


def image_key(cells: list[str], image_i: int, id_i: int) -> str:
    """The image a CSV record names: its ``input_id`` cell, else its url/file cell.

    Read from the raw cells (stripped), without validation: an invalid cell still
    names a group, and two spellings of one file path are two keys (their rows then
    reach the service as two stretches, which the pipeline handles, only slower).
    """
    if 0 <= id_i < len(cells):
        iid = cells[id_i].strip()
        if iid:
            return iid
    if image_i < len(cells):
        return cells[image_i].strip()
    return ""


class _Stretches:
    """Counts the distinct images, and tells whether any image's rows come back after
    another image's.

    Remembers one 64-bit hash per stretch, in 256 arrays by the hash's low bits; a
    partition is checked for repeated hashes (an image that came back) when the scan
    ends, or as soon as it has doubled since its last check (and grown by 1024), and
    then keeps each hash once: memory holds at most about two hashes per image, however
    many stretches (a shuffled file's rows) there are. A collision of two hashes can
    only make a grouped file look scattered (it is then grouped again, correctly, at
    some cost) and count two images as one, never the reverse.
    """

    def __init__(self, scan: OrderScan, *, probe: bool = False) -> None:
        self.scan = scan
        self._parts: list[array[int]] = [array("q") for _ in range(256)]
        self._checked = [0] * 256
        self._last: object = None
        self._probe: set[int] | None = set() if probe else None

    def add(self, key: object) -> bool:
        """One record naming the image ``key``; True when, probing, the key's image came
        back after another image (only the first :data:`_PROBED` stretches are watched)."""
        self.scan.records += 1
        if key == self._last:
            return False
        self._last = key
        self.scan.stretches += 1
        h = hash(key)
        part = self._parts[h & 255]
        part.append(h)
        checked = self._checked[h & 255]
        if len(part) - checked >= max(checked, 1024):
            self._settle(h & 255)
        probe = self._probe
        if probe is not None:
            if h in probe:
                return True
            if len(probe) < _PROBED:
                probe.add(h)
        return False

    def scattered(self) -> OrderScan:
        """The scan so far, stopped at an image whose rows came back."""
        self.scan.grouped = self.scan.complete = False
        self._parts = []
        self._probe = None
        return self.scan

    def _settle(self, i: int) -> None:
        part = self._parts[i]
        unique = set(part)
        if len(unique) != len(part):
            self.scan.grouped = False
            part = self._parts[i] = array("q", unique)
        self._checked[i] = len(part)

    def finish(self) -> OrderScan:
        for i in range(len(self._parts)):
            self._settle(i)
        self.scan.images = sum(len(p) for p in self._parts)
        self._parts = []
        return self.scan


_PROBED = 65536
"""Stretches watched for an image coming back when the pass may stop there."""


async def scan_order(
    path: str | os.PathLike[str],
    image_i: int,
    id_i: int,
    *,
    header_line: int = 1,
    until_scattered: bool = False,
) -> OrderScan:
    """Count the records and images after the header; tell whether each image's rows are together.

    Reads the file's bytes in a worker thread without parsing every record
    (:func:`_scan_bytes`); a file it cannot read that way (lone CR line endings, a UTF-16
    file) is parsed with :mod:`csv` instead. With ``until_scattered`` the pass stops at
    the first image seen to come back within its first :data:`_PROBED` stretches (a
    shuffled file shows one within a few hundred rows), with ``complete`` False: a caller
    that groups the file anyway counts as it groups.
    """
    fast = await anyio.to_thread.run_sync(_scan_bytes, path, image_i, id_i, until_scattered)
    if fast is not None:
        return fast
    return await _scan_csv(path, image_i, id_i, header_line, until_scattered)


async def _scan_csv(
    path: str | os.PathLike[str],
    image_i: int,
    id_i: int,
    header_line: int,
    until_scattered: bool = False,
) -> OrderScan:
    """:func:`scan_order` through the reader's own csv parsing (any file it reads)."""
    order = _Stretches(OrderScan(size=os.stat(path).st_size), probe=until_scattered)
    async for chunk in read_chunks(path):
        for line, cells, problem in chunk.records:
            named = line > header_line and (cells or problem)
            if named and order.add(image_key(cells, image_i, id_i)):
                return order.scattered()
    return order.finish()


def _scan_bytes(
    path: str | os.PathLike[str], image_i: int, id_i: int, until_scattered: bool = False
) -> OrderScan | None:
    """:func:`scan_order` over raw lines; ``None`` when the file needs the csv parser.

    A physical line starts a record unless the quotes before it are still open (an
    odd count so far; an escaped quote counts twice). The image's cells come from a
    plain split when no quote precedes them on the line, else from :mod:`csv` for
    that one record. Keys are the cells' raw bytes, stripped.
    """
    scan = OrderScan(size=os.stat(path).st_size)
    order = _Stretches(scan, probe=until_scattered)
    upto = max(image_i, id_i) + 1
    header = True
    record: list[bytes] = []  # the lines of a record whose quotes are still open
    carry = b""
    with open(path, "rb") as f:
        first = True
        while True:
            data = f.read(1 << 20)
            if first:
                first = False
                if data.startswith(codecs.BOM_UTF8):
                    data = data[3:]
                elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    return None
            if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
                return None  # lone CR line endings (or a CR at a chunk's end): let csv decide
            if not data:
                if carry:
                    lines = [carry]
                    carry = b""
                else:
                    break
            else:
                lines = (carry + data).split(b"\n")
                carry = lines.pop()
            for line in lines:
                if record:
                    record.append(line)
                    if sum(part.count(b'"') for part in record) % 2 == 0:
                        key = _csv_key(record, image_i, id_i)
                        record = []
                        if header:
                            header = False
                        elif order.add(key):
                            return order.scattered()
                    continue
                quote = line.find(b'"')
                if quote < 0:
                    if not line.strip():
                        continue  # a blank line: csv skips it
                    key = _bytes_key(line.split(b",", upto), image_i, id_i)
                elif line.count(b'"') % 2:
                    record = [line]  # a quoted field goes on past this line
                    continue
                elif line.count(b",", 0, quote) >= upto:
                    key = _bytes_key(line[:quote].split(b",", upto), image_i, id_i)
                else:
                    key = _csv_key([line], image_i, id_i)
                if header:
                    header = False
                elif order.add(key):
                    return order.scattered()
            if not data:
                break
    if record:  # a quote never closed: the reader reports that record
        order.add(_csv_key(record, image_i, id_i))
    return order.finish()


def _bytes_key(cells: list[bytes], image_i: int, id_i: int) -> bytes:
    if 0 <= id_i < len(cells):
        iid = cells[id_i].strip()
        if iid:
            return iid
    return cells[image_i].strip() if image_i < len(cells) else b""


def _csv_key(lines: list[bytes], image_i: int, id_i: int) -> bytes:
    text = b"\n".join(lines).decode("utf-8", "surrogateescape")
    try:
        cells = next(csv.reader(text.splitlines(keepends=True)), [])
    except csv.Error:
        return b""  # the reader reports this record
    return image_key(cells, image_i, id_i).encode("utf-8", "surrogateescape")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(tmp_dir: Path) -> None:
    """Remove the temp folders of groupers whose process is gone (killed mid-run)."""
    try:
        entries = list(tmp_dir.glob(_PREFIX + "*"))
    except OSError:
        return
    for entry in entries:
        pid_text = entry.name[len(_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)


class DiskGrouper:
    """Groups records by key through hash-partitioned temp files.

    ::

        with DiskGrouper(tmp_dir, expected_bytes=size, key=lambda r: r[0], what=path) as g:
            for record in records:
                g.add(record)
            for group in g.groups():     # each key's records, in the order added
                ...

    ``key(record)`` names a record's group (any hashable value): the key's hash is
    stored beside the record and groups the records read back, so the key is computed
    once and never stored. Two keys of one 64-bit hash (about once in ten million runs of
    a million images) make one group; its records still come in the order added. A
    record is any value msgspec
    encodes (tuples come back as lists). ``expected_bytes`` sizes the buckets (the
    data's size); ``what`` names the data in error messages. A full disk raises
    :class:`~ingest.errors.SourceError` that says where and what to do.
    """

    def __init__(
        self,
        tmp_dir: str | os.PathLike[str] | None,
        *,
        expected_bytes: int,
        key: Callable[[Any], Hashable],
        what: str = "the rows",
    ) -> None:
        base = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.gettempdir())
        self._key = key
        self._what = what
        self._base = base
        self.buckets = max(1, min(MAX_BUCKETS, -(-expected_bytes // BUCKET_BYTES)))
        self._flush_at = max(4096, _BUFFERED // self.buckets)
        self._buffers = [bytearray() for _ in range(self.buckets)]
        self._counts = [0] * self.buckets
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()
        self.bytes_written = 0
        """Bytes written to the temp files so far."""
        try:
            base.mkdir(parents=True, exist_ok=True)
            remove_stale(base)
            self.dir = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base))
        except OSError as exc:
            raise self._error(exc, "cannot create a temp folder in") from None
        self._paths = [self.dir / f"{i:04d}" for i in range(self.buckets)]
        self._reading = False

    def __enter__(self) -> DiskGrouper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temp folder and everything in it (idempotent)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def _error(self, exc: OSError, doing: str) -> SourceError:
        if exc.errno in _NO_SPACE:
            return SourceError(
                f"no space left in {self._base} to group {self._what} by image "
                f"({self.bytes_written / 1e6:,.1f} MB written): free some space there "
                "or give another folder with --tmp-dir"
            )
        return SourceError(f"{doing} {self._base}: {exc.strerror or exc}")

    def add(self, record: Any, key: Hashable = None) -> None:
        """Queue one record for its group's bucket (``key``: its key, when known)."""
        h = hash(self._key(record) if key is None else key)
        i = h % self.buckets
        buf = self._buffers[i]
        encode = self._encoder.encode_into
        encode(h, buf, -1)
        encode(record, buf, -1)
        self._counts[i] += 2
        if len(buf) >= self._flush_at:
            self._flush(i)

    def _flush(self, i: int) -> None:
        buf, n = self._buffers[i], self._counts[i]
        if not n:
            return
        # n concatenated msgpack values behind an array32 header make one array
        header = b"\xdd" + n.to_bytes(4, "big")
        try:
            with open(self._paths[i], "ab") as f:
                f.write(_FRAME.pack(len(header) + len(buf)))
                f.write(header)
                f.write(buf)
        except OSError as exc:
            raise self._error(exc, "cannot write a temp file in") from None
        self.bytes_written += _FRAME.size + len(header) + len(buf)
        self._buffers[i] = bytearray()
        self._counts[i] = 0

    def seal(self) -> None:
        """Write out what the buffers hold: every record added is now on disk."""
        for i in range(len(self._buffers)):
            self._flush(i)

    def groups(self) -> Iterator[list[Any]]:
        """Each key's records together, in the order added; bucket files go as they are read."""
        if self._reading:
            raise RuntimeError("groups() can be read only once")
        self._reading = True
        self.seal()
        self._buffers = []
        for path in self._paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._error(exc, "cannot read a temp file in") from None
            path.unlink()
            groups: dict[int, list[Any]] = {}
            offset = 0
            while offset < len(data):
                (size,) = _FRAME.unpack_from(data, offset)
                offset += _FRAME.size
                items = iter(self._decoder.decode(data[offset : offset + size]))
                for h, record in zip(items, items, strict=True):
                    group = groups.get(h)
                    if group is None:
                        groups[h] = [record]
                    else:
                        group.append(record)
                offset += size
            del data
            yield from groups.values()


_GROUPED_BATCH = 2048
"""Rows per list handed on from grouped records (about one chunk of the file)."""


class ImageGrouping:
    """Puts every image's rows of a CSV together: the part of a CSV source that groups.

    :meth:`batches` runs the counting pass (:func:`scan_order`: the records and images go
    into the source's stats before any row); when it finds the rows of every image
    together, the records go on as they are read, with no temp file; otherwise they are
    grouped on disk under ``tmp_dir`` (:class:`DiskGrouper`) and read back a few
    thousand rows at a time, each image's rows together and in the file's order.
    :meth:`close` removes the temp files (the source closes it, also when cancelled).
    """

    def __init__(self, tmp_dir: str | os.PathLike[str] | None = None) -> None:
        self.tmp_dir = tmp_dir
        self._grouper: DiskGrouper | None = None

    async def batches(
        self,
        path: Path,
        header_line: int,
        validator: Validator,
        records: AsyncIterator[tuple[list[Record], bool]],
        stats: SourceStats,
    ) -> AsyncIterator[list[Row | InvalidRow]]:
        """The validated rows of ``records`` (the rest of ``path``, as (records, dirty)
        lists), every image's together."""
        started = time.monotonic()
        stats.update(phase="scanning")
        image_i, id_i = validator.image_index, validator.id_index
        scan = await scan_order(path, image_i, id_i, header_line=header_line, until_scattered=True)
        if scan.grouped:
            stats.update(rows_total=scan.records, images_total=scan.images)
            stats.update(grouping_s=time.monotonic() - started, phase="")
            async for chunk, dirty in records:
                yield validator.rows(chunk, dirty)
            return
        stats.update(phase="grouping")

        def key(record: Record) -> str:
            return image_key(record[1], image_i, id_i)

        grouper = self._grouper = DiskGrouper(
            self.tmp_dir, expected_bytes=scan.size, key=key, what=f"the rows of {path}"
        )
        # the scan stopped where an image came back: the records and images are counted
        # here, as they are grouped
        counted = _Stretches(OrderScan(size=scan.size))
        add, count = grouper.add, counted.add
        dirty = False
        async for chunk, chunk_dirty in records:
            dirty = dirty or chunk_dirty
            for record in chunk:
                cells = record[1]
                if cells or record[2]:
                    # image_key, inline for the usual record (no input_id column)
                    k = (
                        cells[image_i].strip()
                        if id_i < 0 and image_i < len(cells)
                        else image_key(cells, image_i, id_i)
                    )
                    add(record, k)
                    count(k)
        grouper.seal()
        scan = counted.finish()
        stats.update(
            rows_total=scan.records,
            images_total=scan.images,
            grouped=True,
            grouping_temp_bytes=grouper.bytes_written,
            grouping_s=time.monotonic() - started,
            phase="",
        )
        batch: list[Record] = []
        for group in grouper.groups():
            batch.extend(group)
            if len(batch) >= _GROUPED_BATCH:
                yield validator.rows(batch, dirty)
                batch = []
        if batch:
            yield validator.rows(batch, dirty)
        self.close()

    def close(self) -> None:
        """Remove the temp files (idempotent)."""
        grouper, self._grouper = self._grouper, None
        if grouper is not None:
            grouper.close()
