"""Stream CSV records out of a file in binary chunks, with their starting line numbers.

The file is never held in memory: it is read in chunks (256 KiB by default) with
aiofiles, decoded incrementally as UTF-8 (a leading BOM is dropped; bytes that are not
UTF-8 become lone surrogates through ``surrogateescape``, so the row that holds them can
be reported instead of the whole file failing), cut after the last line ending, and the
complete lines are parsed with :mod:`csv`. A record whose quoted field is still open at
the end of a chunk (a quoted newline) is carried over and parsed again with more data,
so embedded newlines, CRLF and a final line without a line ending all work.

Line numbers follow :mod:`csv`'s own notion (``\\n``, ``\\r\\n`` and a lone ``\\r`` each
end a line); the header is line 1 and every record is tagged with the line it starts on.

NUL bytes, which Python 3.11's csv refuses, are swapped for the sentinel ``\\udc00``
(which no decoded text can contain) so the row is reported, not the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiofiles

from ingest.errors import SourceError

__all__ = [
    "CHUNK_SIZE",
    "MAX_RECORD_CHARS",
    "NUL",
    "Chunk",
    "bad_text",
    "read_chunks",
]

CHUNK_SIZE = 256 * 1024
"""Bytes read per call."""

MAX_RECORD_CHARS = 64 * 1024 * 1024
"""The longest record (and field) accepted: past it the file is refused as unreadable."""

NUL = "\udc00"
"""What a NUL byte becomes (decoding never yields it: surrogateescape maps 0x80-0xff)."""

_BAD_TEXT = re.compile("[\x00\udc00-\udcff]")

if csv.field_size_limit() < MAX_RECORD_CHARS:
    # A cell of over 128 KiB (the default) is legal; the record cap above bounds memory.
    csv.field_size_limit(MAX_RECORD_CHARS)

Record = tuple[int, list[str], str]
"""(starting line, cells, csv-level problem or "")."""


@dataclass(slots=True)
class Chunk:
    """The complete records of one chunk of the file.

    ``dirty`` is true when some cell of the chunk may hold a NUL byte or bytes that
    were not UTF-8 (callers then check each row with :func:`bad_text`).
    """

    records: list[Record]
    dirty: bool


def bad_text(cell: str) -> str:
    """Why ``cell`` is not clean text ("" when it is): a NUL byte or invalid UTF-8."""
    m = _BAD_TEXT.search(cell)
    if m is None:
        return ""
    if m.group() in (NUL, "\0"):
        return f"contains a NUL byte (at character {m.start() + 1})"
    return f"is not valid UTF-8 (byte 0x{ord(m.group()) - 0xDC00:02x} at character {m.start() + 1})"


def _lines(text: str, done: list[bool]) -> Iterator[str]:
    yield from io.StringIO(text, newline="")
    done.append(True)


def _parse(text: str, first_line: int, final: bool) -> tuple[list[Record], int, str]:
    """Parse the complete lines in ``text``.

    Returns the records, the number of lines they took, and the text of a record
    that is not finished yet (a quoted field still open at the end of ``text``), to be
    parsed again with more data. With ``final`` there is no more data: an open quote
    runs to the end of the file and the record is reported as such.
    """
    if final:
        return _parse_final(text, first_line)
    lines = io.StringIO(text, newline="").readlines()
    n = len(lines)
    # A sentinel blank line: csv reads it as an empty record after the last one, and
    # a record whose quoted field is still open swallows it instead.
    lines.append("\n")
    try:
        every = list(csv.reader(lines))
    except csv.Error:
        pass  # each record on its own, below
    else:
        if len(every) == n + 1:  # one record per line (the usual case): numbered in one go
            del every[n]
            return list(zip(itertools.count(first_line), every, itertools.repeat(""))), n, ""
    feed = iter(lines)
    records: list[Record] = []
    before = 0  # lines consumed by earlier readers (a new one follows a csv error)
    consumed = 0  # lines consumed by complete records
    while True:
        reader = csv.reader(feed)
        try:
            for cells in reader:
                total = before + reader.line_num
                if total > n:
                    if cells:  # the record ran past the last line: more data is needed
                        return records, consumed, "".join(lines[consumed:n])
                    return records, n, ""
                records.append((first_line + consumed, cells, ""))
                consumed = total
            return records, min(before + reader.line_num, n), ""
        except csv.Error as exc:
            records.append((first_line + consumed, [], f"the CSV record cannot be read: {exc}"))
            before += reader.line_num
            consumed = before


def _parse_final(text: str, first_line: int) -> tuple[list[Record], int, str]:
    """:func:`_parse` of the file's last text, where an open quote runs to the end."""
    records: list[Record] = []
    done: list[bool] = []  # set once csv asked for a line past the last one
    feed = _lines(text, done)
    reader = csv.reader(feed)
    before = 0
    consumed = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return records, before + reader.line_num, ""
        except csv.Error as exc:
            records.append((first_line + consumed, [], f"the CSV record cannot be read: {exc}"))
            before += reader.line_num
            consumed = before
            reader = csv.reader(feed)
            continue
        problem = ""
        if done and _open_quote(text, consumed):
            problem = (
                'a quoted field is never closed: a closing double quote (") is missing '
                "before the end of the file"
            )
        records.append((first_line + consumed, cells, problem))
        consumed = before + reader.line_num


def _open_quote(text: str, skip_lines: int) -> bool:
    rest = io.StringIO(text, newline="")
    for _ in itertools.islice(rest, skip_lines):
        pass
    tail = rest.read()
    return tail.count('"') % 2 == 1


def _decode_error(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "the file is UTF-16 text; save it as UTF-8 (CSV UTF-8)"
    return ""


async def read_chunks(
    path: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE
) -> AsyncIterator[Chunk]:
    """Yield the records of the CSV file at ``path``, chunk by chunk, in file order.

    Blank lines are yielded as records with no cells. Raises :class:`SourceError` when
    the file cannot be opened or read, is UTF-16, or holds a record over
    :data:`MAX_RECORD_CHARS` characters.
    """
    shown = os.fspath(path)
    try:
        f = await aiofiles.open(path, "rb")
    except FileNotFoundError:
        raise SourceError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{shown}: is a folder, not a CSV file") from None
    except OSError as exc:
        raise SourceError(f"{shown}: cannot open: {exc.strerror or exc}") from None
    try:
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        carry = ""
        line = 1
        want = max(chunk_size, 4)  # the first read sees any byte order mark whole
        first = True
        while True:
            try:
                data = await f.read(want)
            except OSError as exc:
                raise SourceError(f"{shown}: cannot read: {exc.strerror or exc}") from None
            if first:
                first = False
                problem = _decode_error(data)
                if problem:
                    raise SourceError(f"{shown}: {problem}")
            final = not data
            text = carry + decoder.decode(data, final=final)
            if final:
                complete, carry = text, ""
            else:
                cut = max(text.rfind("\n"), text.rfind("\r", 0, len(text) - 1))
                complete, carry = text[: cut + 1], text[cut + 1 :]
            want = chunk_size
            if complete:
                dirty = not complete.isascii() and _BAD_TEXT.search(complete) is not None
                if "\0" in complete:
                    complete = complete.replace("\0", NUL)
                    dirty = True
                records, used, pending = _parse(complete, line, final)
                line += used
                if pending:
                    carry = pending + carry
                    # Read at least as much again: a long record costs linear time.
                    want = max(chunk_size, len(carry))
                if records:
                    yield Chunk(records, dirty)
            if len(carry) > MAX_RECORD_CHARS:
                raise SourceError(
                    f"{shown}: line {line}: a record runs over {MAX_RECORD_CHARS // 2**20} MiB; "
                    'is a closing quote (") missing?'
                )
            if final:
                return
    finally:
        await f.close()
