"""The official SDK's CSV: ``inputid,input,concepts,metadata,geopoints``.

The file ``Inputs.get_inputs_from_csv`` and ``Dataset.upload_from_csv`` read
(clarifai-python, ``client/input.py``), recognised by its header: an ``input`` column and
no ``url`` or ``file``. It uploads unchanged and stores what the SDK stores, without the
SDK's failure modes; its columns become ingest's own, one for one, so a failed row goes
to the failures file as ingest's CSV (``url`` or ``file``, ``pos_concepts``,
``metadata``, ``input_id``, ``geo``), to be fixed and uploaded:

* ``input``: an image's URL (the SDK's ``csv_type='url'``) or local file
  (``'file_path'``), one kind per file, as the SDK's ``csv_type`` is (the first row's
  decides). Files are read relative to the CSV's folder (the SDK opens them from the
  current folder: run from the CSV's folder, both read the same files); an absolute path
  under that folder is read too. Ingest uploads images: text in the cell (``csv_type
  'raw'``), or a video, audio or text file by its name, is refused on its row, saying so.
* ``inputid``: the input's id, kept (the SDK's ``uuid4().hex`` without the column, or
  for an empty cell, is replaced by ingest's id made from the URL or path, the same on
  every run). Rows naming one id (or, without ids, one URL or file) are one input, its
  concepts and metadata theirs together; a row giving an earlier row's id with another
  image fails, naming that row (the SDK's second input would fail as a duplicate id).
* ``concepts``: split on ``,`` as the SDK splits them, each made a concept whose id and
  name are the text (value 1); spaces around a piece are dropped and empty pieces
  ignored (the SDK would send them as ids, which Clarifai refuses); a piece that is not
  a valid id fails its row (``--concept-ids names`` makes ids of names, the name kept).
* ``metadata``: a JSON object, or the SDK's single-quoted form (``{'key': 'value'}``,
  read by turning every ``'`` into ``"``, as the SDK does, when the text is not JSON
  as it is: an apostrophe inside a JSON string survives).
* ``geopoints``: ``longitude,latitude`` into the input's ``data.geo.geo_point``.

Every other column follows ingest's CSV rules: a near miss of one of the SDK's columns
is an error with a "did you mean" (the SDK refuses any column it does not know), one of
ingest's own columns (``dataset_id``, ``neg_concepts``...) is read, any other is a
warning. The rows are streamed and grouped by input on disk when one input's rows are
scattered, as a CSV's are.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ingest.errors import MissingColumnError, SourceError
from ingest.model import InvalidRow, Row

from .cells import parse_object, show
from .columns import near_miss
from .csvfile import CsvSource
from .formats import DatasetPath, FormatOptions
from .grouping import ImageGrouping
from .validate import Validator

__all__ = ["SDK_COLUMNS", "SdkCsvSource", "SdkValidator"]

SDK_COLUMNS = ("inputid", "input", "concepts", "metadata", "geopoints")
"""The columns ``Inputs.get_inputs_from_csv`` accepts (it refuses any other)."""

_AS = {"inputid": "input_id", "concepts": "pos_concepts", "geopoints": "geo"}
"""The SDK's column -> ingest's (``input`` becomes ``url`` or ``file``)."""

_MEDIA = {
    **dict.fromkeys((".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".wmv"), "a video"),
    **dict.fromkeys((".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac"), "an audio file"),
    **dict.fromkeys((".txt", ".csv", ".json", ".md", ".pdf", ".html"), "a text file"),
}
"""File endings of what the SDK's other ``input_type`` values upload."""

_HEAD_BYTES = 64 * 1024
"""Bytes read to recognise the header."""


def sdk_header(cells: Sequence[str]) -> bool:
    """True for the header of the SDK's CSV: an ``input`` column, no ``url`` or ``file``."""
    names = {c.strip() for c in cells}
    return "input" in names and not names & {"url", "file"}


def _is_url(cell: str) -> bool:
    return "://" in cell[:16]


class SdkValidator(Validator):
    """Turns the SDK's cells into ingest's, then checks them as a CSV's (see the module
    docs); an invalid row names the SDK's column."""

    def __init__(
        self,
        sdk_columns: Sequence[str],
        image: str,
        *,
        path: str,
        base_dir: Path,
        concept_ids: str = "ids",
    ) -> None:
        columns = [image if c == "input" else _AS.get(c, c) for c in sdk_columns]
        super().__init__(columns, path=path, base_dir=base_dir, concept_ids=concept_ids)
        self.sdk_names = {ours: theirs for ours, theirs in zip(columns, sdk_columns, strict=True)}
        index = {c: i for i, c in enumerate(sdk_columns)}
        self._input_i = index["input"]
        self._id_i = index.get("inputid", -1)
        self._last: tuple[str, str, int] = ("", "", 0)
        """The last row's id, image and line (the rows of one id come together)."""
        self._labels_i = index.get("concepts", -1)
        self._text_i = index.get("metadata", -1)
        self._root = base_dir.resolve()
        self._last_text = ("", "")
        self._checked = self.check
        self.check = self._translated

    def _translated(self, line: int, cells: list[str], dirty: bool) -> Row | InvalidRow:
        if len(cells) == len(self.columns):
            problem = self._translate(cells) or self._same_image(line, cells)
            if problem is not None:
                column, reason = problem
                return InvalidRow(line, column, reason, self._raw(cells))
        got = self._checked(line, cells, dirty)
        if isinstance(got, InvalidRow) and got.column in self.sdk_names:
            got.column = self.sdk_names[got.column]
        return got

    def _translate(self, cells: list[str]) -> tuple[str, str] | None:
        """Rewrite the SDK's cells as ingest's in place; (column, reason) when the row
        cannot be uploaded."""
        problem = self._input(cells)
        if problem:
            return "input", problem
        if self._labels_i >= 0:
            text = cells[self._labels_i]
            if text:
                pieces = [p.strip() for p in text.split(",")]
                for piece in pieces:
                    if "|" in piece:
                        return "concepts", (
                            f"concept {show(piece)} contains '|', which ingest's CSV puts "
                            "between concepts; rename it"
                        )
                cells[self._labels_i] = "|".join(p for p in pieces if p)
        if self._text_i >= 0:
            text = cells[self._text_i]
            if "'" in text:
                last = self._last_text
                if last[0] != text:  # rows often repeat one metadata cell
                    last = self._last_text = (text, _sdk_metadata(text))
                cells[self._text_i] = last[1]
        return None

    def _same_image(self, line: int, cells: list[str]) -> tuple[str, str] | None:
        """(column, reason) when the row's id is an earlier row's with another image (the
        rows of one id come together: grouped on disk when the file scatters them)."""
        if self._id_i < 0:
            return None
        iid, image = cells[self._id_i].strip(), cells[self._input_i].strip()
        last_id, last_image, last_line = self._last
        if iid and iid == last_id and image != last_image:
            return "input", (
                f"inputid {show(iid)} is the input of line {last_line} ({show(last_image)}): "
                "one id names one image; give this row its own id"
            )
        if iid != last_id:
            self._last = (iid, image, line)
        return None

    def _input(self, cells: list[str]) -> str:
        """Check and rewrite the ``input`` cell (a file path made relative to the CSV's
        folder); why the row cannot be uploaded, or ""."""
        cell = cells[self._input_i].strip()
        if not cell:
            return ""  # ingest's own check says it is empty
        if _is_url(cell):
            if self.image == "file":
                return (
                    f"input {show(cell)} is a URL, but this file's inputs are local files (its "
                    "first row's is): give one kind per file, as the SDK's csv_type does"
                )
            return _media(cell, cell.partition("?")[0].partition("#")[0])
        if "\n" in cell or len(cell) > 1024 or (" " in cell and not self._exists(cell)):
            return (
                f"input {show(cell)} is text, not an image's URL or file: ingest uploads images "
                "(the SDK's csv_type 'raw' uploads text)"
            )
        if self.image == "url":
            return (
                f"input {show(cell)} is not a URL, but this file's inputs are URLs (its first "
                "row's is): give one kind per file, as the SDK's csv_type does"
            )
        problem = _media(cell, cell)
        if problem:
            return problem
        if os.path.isabs(cell):
            try:
                inside = Path(cell).resolve().relative_to(self._root)
            except (OSError, ValueError):
                return (
                    f"input {show(cell)} is outside the CSV's folder ({self._root}); ingest "
                    "reads local images under it: move the CSV beside the images"
                )
            cells[self._input_i] = inside.as_posix()
        return ""

    def _exists(self, cell: str) -> bool:
        try:
            return (self._root / cell).is_file()
        except (OSError, ValueError):
            return False


def _sdk_metadata(text: str) -> str:
    """A metadata cell holding ``'``: as it is when it is JSON, else as the SDK reads it
    (every ``'`` turned into ``"``) when that is a JSON object."""
    if isinstance(parse_object(text), str):
        quoted = text.replace("'", '"')
        if isinstance(parse_object(quoted), dict):
            return quoted
    return text


def _media(cell: str, path: str) -> str:
    """Why the image ``cell`` (its path part ``path``) is not one: another kind of media."""
    dot = path.rfind(".")
    if dot <= path.rfind("/"):
        return ""
    kind = _MEDIA.get(path[dot:].lower())
    if kind is None:
        return ""
    return f"input {show(cell)} is {kind}: ingest uploads images (the SDK's input_type 'image')"


class SdkCsvSource(CsvSource):
    """The rows of the official SDK's CSV (see the module docs), every input's together."""

    format_name = "sdk-csv"
    describe = "the official SDK's CSV (inputid,input,concepts,metadata,geopoints)"
    folder: ClassVar[bool] = False
    options_read = frozenset({"concept_ids"})

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: FormatOptions,
        *,
        tmp_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(DatasetPath(path, options), grouping=ImageGrouping(tmp_dir))

    @staticmethod
    def recognises(path: Path) -> bool:
        """A file whose header (its first line that is not blank) is the SDK's."""
        if not path.is_file():
            return False
        try:
            with path.open("rb") as fh:
                head = fh.read(_HEAD_BYTES)
        except OSError:
            return False
        text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
        try:
            for cells in csv.reader(io.StringIO(text)):
                if any(c.strip() for c in cells):
                    return sdk_header(cells)
        except csv.Error:  # not a CSV the SDK reads; the CSV reader says why
            return False
        return False

    async def _validator_for(self, shown: str) -> Validator:
        columns = self.columns
        lacking = [c for c in SDK_COLUMNS if c not in columns]
        if "input" not in columns:  # given as --format sdk-csv
            cell = next((c for c in columns if near_miss(c, ["input"])), None)
            hint = (
                "" if cell is None else f"column {cell!r} is not the SDK's; did you mean 'input'?"
            )
            raise MissingColumnError("input", path=shown, hint=hint)
        for cell in columns:
            if cell in SDK_COLUMNS:
                continue
            meant = near_miss(cell, lacking)
            if meant is not None:
                raise SourceError(
                    f"{shown}: line {self.header_line}: column {cell!r} is not one of the SDK's "
                    f"CSV; did you mean {meant!r}?"
                )
        first = await self._first_input()
        image = "url" if first is None or _is_url(first) else "file"
        validator = SdkValidator(
            columns,
            image,
            path=shown,
            base_dir=self.base_dir,
            concept_ids=self._concept_ids,
        )
        self.columns = list(validator.columns)
        return validator

    async def _first_input(self) -> str | None:
        """The first row's ``input`` cell (reading on until a row is found), or None."""
        i = self.columns.index("input")
        assert self._chunks is not None
        while True:
            for _, cells, _ in self._pending:
                if cells:
                    return cells[i].strip() if i < len(cells) else None
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return None
            self._pending.extend(chunk.records)
            self._pending_dirty = self._pending_dirty or chunk.dirty
