"""Check one row of cells and turn it into a :class:`Row` or an :class:`InvalidRow`.

Every problem becomes one message naming the column and saying what is wrong and
what is allowed; the first problem of a row is the one reported. The checks of single
cells and of the header live in :mod:`ingest.source.cells`; this is the row loop, one
function on the hot path.

Limits (documented in :mod:`ingest.source`):

* :data:`MAX_CONCEPTS` concepts per cell (``pos_concepts`` or ``neg_concepts``);
* :data:`MAX_METADATA_CHARS` characters of metadata JSON;
* local files (``file`` column) of at most :data:`MAX_FILE_BYTES`;
* polygons (``polygon`` column) of 3 to :data:`MAX_POLYGON_POINTS` points.

The box columns are all four or none: a file without any is a classification set,
every row of it image-level (labels and metadata for the whole image).

Optional region and annotation columns:

* ``polygon``: a polygon region instead of a box, as normalised ``x y`` pairs separated
  by spaces (``0.1 0.2 0.5 0.2 0.3 0.7``: points (0.1, 0.2), (0.5, 0.2), (0.3, 0.7));
  the box columns stay empty on such a row. No commas, so the cell needs no quoting and
  comes back unchanged from the failures file.
* ``annotation_info``: a JSON object stored in the annotation's ``annotation_info``.
* ``dataset_id``: a dataset the row's input also goes into (made when the app lacks it);
  an image's first row decides.
* ``geo``: the input's geo point, ``longitude,latitude`` in degrees (the official SDK's
  ``geopoints`` cell: ``-73.98,40.75``), kept as ``Input.data.geo.geo_point``; an image's
  first row giving one decides.
* ``concept_names``: a JSON object naming the row's concepts (``{"traffic-light":
  "Traffic Light"}``), kept as ``Concept.name``; a concept it leaves out is its own
  name. The format readers write it for class names that are not their id, so a failed
  row, or a dataset written as a CSV (``ingest validate --write-csv``), keeps them.

Concept cells hold concept ids; with ``concept_ids="names"`` they hold names instead
(``traffic light``), which become ids by :func:`concept_id` and are kept as
``Concept.name``.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, cast

from ingest import ids
from ingest.errors import SourceError
from ingest.model import InvalidRow, Row

from .cells import (
    BOX_COLUMNS,
    MAX_CONCEPTS,
    MAX_FILE_BYTES,
    box_problem,
    check_header,
    concept_id,
    id_problem,
    parse_geo,
    parse_object,
    parse_polygon,
    show,
    url_problem,
)
from .csvstream import Record, bad_text

__all__ = ["Validator"]


_KNOWN_CACHE = 100_000
_CONCEPT_CACHE = 4096
_NUMBER_CACHE = 16384
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


class _Concepts(NamedTuple):
    """The concepts of one cell, and their part of an annotation id."""

    names: tuple[str, ...]
    key: bytes


_NO_CONCEPTS = _Concepts((), ids.labels_part(()))


class Validator:
    """Turns cells into rows for one header.

    ``base_dir`` is the folder ``file`` paths are relative to (the CSV's folder).
    ``concept_ids="names"``: concept cells hold names, made ids by :func:`concept_id`;
    two names that make one id are refused. ``concept_names``: the names of the ids
    the cells hold (a format source's classes), put on every row. With ``counting``,
    valid rows are not built but tallied (``images``, ``boxes`` - polygons included, and
    counted apart in ``polygons`` - ``image_level_rows``, ``datasets``, :meth:`labels`)
    and ``check`` returns ``None`` for them: the fast path of
    :func:`~ingest.source.validate_file`.
    """

    def __init__(
        self,
        columns: Sequence[str],
        *,
        path: str | None,
        base_dir: Path,
        counting: bool = False,
        concept_ids: str = "ids",
        concept_names: Mapping[str, str] | None = None,
    ) -> None:
        if concept_ids not in ("ids", "names"):
            raise ValueError(f"concept_ids must be 'ids' or 'names', not {concept_ids!r}")
        self.columns = list(columns)
        self._by_name = concept_ids == "names"
        self.concept_names: dict[str, str] | None = (
            {} if self._by_name else dict(concept_names) if concept_names else None
        )
        """Concept id -> name, shared by the rows (``None``: every id is its own name)."""
        self._counting = counting
        self.images: set[int] = set()
        self.boxes = 0
        self.image_level_rows = 0
        self.polygons = 0
        """Of the ``boxes`` tallied, those that are polygons."""
        self.datasets: set[str] = set()
        """The datasets the tallied rows name (``dataset_id``)."""
        self._label_sets: set[tuple[str, ...]] = set()
        self.image, index = check_header(self.columns, path)
        self._image_i = index[self.image]
        # no box columns at all: a classification set (every row image-level)
        self._box_i = tuple(index[c] for c in BOX_COLUMNS) if BOX_COLUMNS[0] in index else None
        self._geo_i = index.get("geo", -1)
        self._pos_i = index.get("pos_concepts", -1)
        self._neg_i = index.get("neg_concepts", -1)
        self._meta_i = index.get("metadata", -1)
        self._id_i = index.get("input_id", -1)
        self._poly_i = index.get("polygon", -1)
        self._info_i = index.get("annotation_info", -1)
        self._ds_i = index.get("dataset_id", -1)
        # the concept_names column names the ids of the concept cells; a format source's
        # names (given) are where its cells come from, so it is read only without them
        self._names_i = index.get("concept_names", -1) if concept_names is None else -1
        if self._names_i >= 0 and self._by_name:
            where = f"{path}: " if path else ""
            raise SourceError(
                f"{where}line 1: the concept_names column names concepts given by id; with "
                "names in the concept cells (concept ids 'names') leave it out"
            )
        self._names_cache: dict[str, dict[str, str] | str] = {}
        self._n = len(self.columns)
        self._base = base_dir
        self._base_resolved: Path | None = None
        self._known: set[str] = set()
        # Small caches: rows of one image usually follow each other and repeat the
        # same URL and metadata; concept cells repeat across the file.
        self._concept_cache: dict[str, _Concepts | str] = {}
        self._last_source: tuple[str, str, bytes] = ("", "", b"")
        self._last_meta: tuple[str, dict[str, Any] | str] = ("", "")
        self._last_file: tuple[str, str, str, str] = ("", "", "", "")
        self._last_counted: tuple[str, _Concepts] = ("", _NO_CONCEPTS)
        self.check = cast(Callable[[int, list[str], bool], "Row | InvalidRow"], self._check)
        """Validate one record: (line, cells, dirty) -> Row or InvalidRow."""
        self._fast = self._fast_path()

    @property
    def image_index(self) -> int:
        """The position of the ``url`` (or ``file``) column."""
        return self._image_i

    @property
    def id_index(self) -> int:
        """The position of the ``input_id`` column, or -1."""
        return self._id_i

    def rows(self, records: list[Record], dirty: bool) -> list[Row | InvalidRow]:
        """Validate records read from a CSV (blank lines skipped; a record the csv
        parser could not read is invalid as such)."""
        if not dirty and self._fast is not None:
            return self._fast(records)
        out: list[Row | InvalidRow] = []
        append = out.append
        check = self.check
        columns = self.columns
        for line, cells, problem in records:
            if problem:
                append(InvalidRow(line, "", problem, dict(zip(columns, cells, strict=False))))
            elif cells:
                item = check(line, cells, dirty)
                if item is not None:  # None: a valid row tallied by a counting validator
                    append(item)
        return out

    def labels(self) -> set[str]:
        """The distinct concepts of the valid rows tallied so far (``counting``)."""
        out: set[str] = set()
        for concepts in self._label_sets:
            out.update(concepts)
        return out

    # -- the fast path ---------------------------------------------------------

    def _fast_path(self) -> Callable[[list[Record]], list[Row | InvalidRow]] | None:
        """:meth:`rows` for the usual header (``url``, the box, concepts, metadata, columns
        ingest does not read), or None for another one.

        One loop over the records, every position and cache a local: a row goes on only
        when each check :meth:`_check` makes passes here too, and becomes the same
        :class:`Row`; any other row (a problem, a cell the caches do not know yet) is
        :meth:`_check`'s, which says what is wrong in its own words.
        """
        others = (self._poly_i, self._info_i, self._names_i, self._ds_i, self._id_i, self._geo_i)
        box = self._box_i
        if self._counting or self.image != "url" or box is None or max(others) >= 0:
            return None
        n, ui, columns = self._n, self._image_i, self.columns
        i0, i1, i2, i3 = box
        pi, ni, mi = self._pos_i, self._neg_i, self._meta_i
        cache = self._concept_cache
        concepts = self._concepts
        check = self.check
        names = self.concept_names
        box_id, blank = ids.box_id_of_texts, _NO_CONCEPTS
        http = ("https://", "http://")
        # box cells repeat (four decimals make ten thousand numbers): each one's float and
        # its text in annotation ids, read once
        numbers: dict[str, tuple[float, str]] = {}
        known = numbers.get

        def number(text: str) -> tuple[float, str] | None:
            try:
                value = float(text)
            except ValueError:
                return None
            got = (value, ids.number_text(value))
            if len(numbers) < _NUMBER_CACHE:
                numbers[text] = got
            return got

        def disjoint(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
            return set(a).isdisjoint(b)

        def rows(records: list[Record]) -> list[Row | InvalidRow]:
            out: list[Row | InvalidRow] = []
            append = out.append
            source, iid, ikey = self._last_source
            meta_text, meta = self._last_meta
            for line, cells, problem in records:
                if problem or len(cells) != n:
                    if problem:
                        raw = dict(zip(columns, cells, strict=False))
                        append(InvalidRow(line, "", problem, raw))
                    elif cells:
                        append(check(line, cells, False))
                    continue
                url = cells[ui].strip()
                if not url.startswith(http) or " " in url or not url.isprintable():
                    append(check(line, cells, False))
                    continue
                a, b, c, d = cells[i0], cells[i1], cells[i2], cells[i3]
                coords: tuple[float, float, float, float] | None = None
                texts = ("", "", "", "")
                if a and b and c and d:
                    na, nb = known(a) or number(a), known(b) or number(b)
                    nc, nd = known(c) or number(c), known(d) or number(d)
                    if (
                        na is None
                        or nb is None
                        or nc is None
                        or nd is None
                        or not (0.0 <= na[0] < nc[0] <= 1.0 and 0.0 <= nb[0] < nd[0] <= 1.0)
                    ):
                        append(check(line, cells, False))
                        continue
                    coords = (na[0], nb[0], nc[0], nd[0])
                    texts = (na[1], nb[1], nc[1], nd[1])
                elif a or b or c or d:
                    append(check(line, cells, False))
                    continue
                pos = neg = blank
                if pi >= 0 and (text := cells[pi]):
                    got = cache.get(text) or concepts(text)
                    if isinstance(got, str):
                        append(check(line, cells, False))
                        continue
                    pos = got
                if ni >= 0 and (text := cells[ni]):
                    got = cache.get(text) or concepts(text)
                    if isinstance(got, str) or (pos.names and not disjoint(pos.names, got.names)):
                        append(check(line, cells, False))
                        continue
                    neg = got
                metadata: dict[str, Any] | None = None
                if mi >= 0 and (text := cells[mi]) and not text.isspace():
                    if text != meta_text:
                        meta_text, meta = text, parse_object(text)
                        self._last_meta = (meta_text, meta)
                    if isinstance(meta, str):
                        append(check(line, cells, False))
                        continue
                    metadata = meta
                if url != source:
                    source, iid = url, ids.input_id(url)
                    ikey = ids.input_key(iid)
                    self._last_source = (source, iid, ikey)
                aid = "" if coords is None else box_id(ikey, texts, pos.key + neg.key)
                append(
                    Row(
                        line,
                        iid,
                        url,
                        "",
                        coords,
                        aid,
                        pos.names,
                        neg.names,
                        metadata,
                        tuple(cells),
                        columns,
                        None,
                        None,
                        names,
                        "",
                    )
                )
            return out

        return rows

    # -- one row ---------------------------------------------------------------

    def _check(self, line: int, cells: list[str], dirty: bool) -> Row | InvalidRow | None:
        """Validate one record (``dirty``: it may hold NUL bytes or invalid UTF-8)."""
        columns = self.columns
        if len(cells) != self._n:
            raw = dict(zip(columns, cells, strict=False))
            return InvalidRow(
                line,
                "",
                f"the row has {len(cells)} cells but the header has {self._n} columns",
                raw,
            )
        if dirty:
            for name, cell in zip(columns, cells, strict=True):
                problem = bad_text(cell)
                if problem:
                    return InvalidRow(line, name, f"the cell {problem}", self._raw(cells))

        # The image: a URL or a local file.
        path = ""
        cell = cells[self._image_i].strip()
        if self.image == "url":
            if not cell:
                return InvalidRow(line, "url", "the url is empty", self._raw(cells))
            if not cell.startswith(("https://", "http://")):
                problem = url_problem(cell)
                if problem:
                    return InvalidRow(line, "url", problem, self._raw(cells))
            if " " in cell or not cell.isprintable():
                return InvalidRow(
                    line,
                    "url",
                    "the url contains a space or control character; encode it",
                    self._raw(cells),
                )
            source = cell
        else:
            if not cell:
                return InvalidRow(line, "file", "the file path is empty", self._raw(cells))
            problem, path, source = self._file(cell)
            if problem:
                return InvalidRow(line, "file", problem, self._raw(cells))

        # The box: four empty cells, or four numbers in [0, 1] in order (or no box columns).
        bi = self._box_i
        has_box = False
        left = top = right = bottom = math.nan
        if bi is not None:
            a, b, c, d = cells[bi[0]], cells[bi[1]], cells[bi[2]], cells[bi[3]]
            try:
                left, top, right, bottom = float(a), float(b), float(c), float(d)
            except ValueError:
                left = math.nan
            if 0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0:  # False for NaN
                has_box = True
            elif (a or b or c or d) and (a.strip() or b.strip() or c.strip() or d.strip()):
                return box_problem(line, (a, b, c, d), self._raw(cells))

        # A polygon instead of a box.
        polygon: tuple[float, ...] | None = None
        if self._poly_i >= 0:
            text = cells[self._poly_i]
            if text and not text.isspace():
                if has_box:
                    return InvalidRow(
                        line,
                        "polygon",
                        "the row has both a box and a polygon; "
                        "give one region per row (the other's cells empty)",
                        self._raw(cells),
                    )
                got_poly = parse_polygon(text)
                if isinstance(got_poly, str):
                    return InvalidRow(line, "polygon", got_poly, self._raw(cells))
                polygon = got_poly

        # Concepts (each cell's parse is cached: concept cells repeat across the file).
        pos = neg = _NO_CONCEPTS
        cache = self._concept_cache
        if self._pos_i >= 0:
            text = cells[self._pos_i]
            if text:
                got = cache.get(text) or self._concepts(text)
                if isinstance(got, str):
                    return InvalidRow(line, "pos_concepts", got, self._raw(cells))
                pos = got
        if self._neg_i >= 0:
            text = cells[self._neg_i]
            if text:
                got = cache.get(text) or self._concepts(text)
                if isinstance(got, str):
                    return InvalidRow(line, "neg_concepts", got, self._raw(cells))
                neg = got
                if pos.names:
                    both = set(pos.names).intersection(neg.names)
                    if both:
                        first = next(x for x in neg.names if x in both)
                        return InvalidRow(
                            line,
                            "neg_concepts",
                            f"concept {first!r} is both positive (pos_concepts) and negative",
                            self._raw(cells),
                        )

        # Metadata (rows with the same text share one dict: treat it as read-only).
        metadata: dict[str, Any] | None = None
        if self._meta_i >= 0:
            text = cells[self._meta_i]
            if text and not text.isspace():
                last = self._last_meta
                if last[0] == text:
                    got_meta = last[1]
                else:
                    got_meta = parse_object(text)
                    self._last_meta = (text, got_meta)
                if isinstance(got_meta, str):
                    return InvalidRow(line, "metadata", got_meta, self._raw(cells))
                metadata = got_meta

        geo: tuple[float, float] | None = None
        if self._geo_i >= 0:
            text = cells[self._geo_i]
            if text and not text.isspace():
                got_geo = parse_geo(text)
                if isinstance(got_geo, str):
                    return InvalidRow(line, "geo", got_geo, self._raw(cells))
                geo = got_geo

        info: dict[str, Any] | None = None
        if self._info_i >= 0:
            text = cells[self._info_i]
            if text and not text.isspace():
                if not has_box and polygon is None:
                    return InvalidRow(
                        line,
                        "annotation_info",
                        "annotation_info needs a region (a box or a polygon) on the row",
                        self._raw(cells),
                    )
                got_info = parse_object(text, "annotation_info")
                if isinstance(got_info, str):
                    return InvalidRow(line, "annotation_info", got_info, self._raw(cells))
                info = got_info

        names = self.concept_names
        if self._names_i >= 0:
            text = cells[self._names_i]
            if text and not text.isspace():
                got_names = self._names_cache.get(text) or self._names_cell(text)
                if isinstance(got_names, str):
                    return InvalidRow(line, "concept_names", got_names, self._raw(cells))
                for cid in got_names:
                    if cid not in pos.names and cid not in neg.names:
                        return InvalidRow(
                            line,
                            "concept_names",
                            f"concept_names names {show(cid)}, which is not a concept of the row",
                            self._raw(cells),
                        )
                names = got_names

        dataset = ""
        if self._ds_i >= 0:
            dataset = cells[self._ds_i].strip()
            if dataset and not ids.is_valid_id(dataset):
                return InvalidRow(
                    line,
                    "dataset_id",
                    f"dataset_id {show(dataset)} {id_problem(dataset)}",
                    self._raw(cells),
                )

        # Identity.
        iid = ""
        if self._id_i >= 0:
            iid = cells[self._id_i].strip()
            if iid and not ids.is_valid_input_id(iid):
                problem = (
                    f"is {len(iid)} characters long; input ids may have 1 to "
                    f"{ids.MAX_INPUT_ID} characters"
                    if len(iid) > ids.MAX_INPUT_ID
                    else id_problem(iid)
                )
                return InvalidRow(
                    line, "input_id", f"input_id {show(iid)} {problem}", self._raw(cells)
                )
        if self._counting:
            key = iid or source  # an id never holds ':' and a source always does
            if key != self._last_counted[0]:
                self.images.add(hash(key))
            if has_box or polygon is not None:
                self.boxes += 1
                if polygon is not None:
                    self.polygons += 1
            else:
                self.image_level_rows += 1
            if dataset:
                self.datasets.add(dataset)
            if pos is not self._last_counted[1] and pos.names:
                self._label_sets.add(pos.names)
            if neg.names:
                self._label_sets.add(neg.names)
            self._last_counted = (key, pos)
            return None
        if iid:
            ikey = ids.input_key(iid)
        else:
            last_source = self._last_source
            if last_source[0] != source:
                iid = ids.input_id(source)
                last_source = self._last_source = (source, iid, ids.input_key(iid))
            iid, ikey = last_source[1], last_source[2]
        coords = None
        aid = ""
        if has_box:
            coords = (left, top, right, bottom)
            aid = ids.box_id(ikey, coords, pos.key + neg.key)
        elif polygon is not None:
            aid = ids.polygon_id(ikey, polygon, pos.key + neg.key)
        url = source if not path else ""
        return Row(
            line,
            iid,
            url,
            path,
            coords,
            aid,
            pos.names,
            neg.names,
            metadata,
            tuple(cells),
            columns,
            polygon,
            info,
            names,
            dataset,
            geo,
        )

    def _raw(self, cells: list[str]) -> dict[str, str]:
        return dict(zip(self.columns, cells, strict=False))

    # -- parts -----------------------------------------------------------------

    def _concepts(self, text: str) -> _Concepts | str:
        """The concepts of one cell, or why they are invalid (cached by cell text)."""
        cache = self._concept_cache
        got = cache.get(text)
        if got is None:
            got = self._parse_concepts(text)
            if len(cache) < _CONCEPT_CACHE and len(text) < 256:
                cache[text] = got
        return got

    def _parse_concepts(self, text: str) -> _Concepts | str:
        pieces = [p.strip() for p in text.split("|")]
        concepts = tuple(dict.fromkeys(p for p in pieces if p))
        if len(concepts) > MAX_CONCEPTS:
            return f"{len(concepts)} concepts in one cell; at most {MAX_CONCEPTS} are allowed"
        if self._by_name:
            names = self.concept_names
            assert names is not None
            made: list[str] = []
            for name in concepts:
                cid = concept_id(name)
                if not cid:
                    return f"concept name {show(name)} gives no id"
                had = names.setdefault(cid, name)
                if had != name:
                    return (
                        f"concept names {show(had)} and {show(name)} both become the id "
                        f"{cid!r}; rename one"
                    )
                made.append(cid)
            concepts = tuple(dict.fromkeys(made))
        known = self._known
        for concept in concepts:
            if concept not in known:
                if not ids.is_valid_id(concept):
                    return f"concept {show(concept)} {id_problem(concept)}"
                if len(known) < _KNOWN_CACHE:
                    known.add(concept)
        return _Concepts(concepts, ids.labels_part(concepts))

    def _names_cell(self, text: str) -> dict[str, str] | str:
        """The names of a ``concept_names`` cell (id -> name), or why they are invalid."""
        got = parse_object(text, "concept_names")
        if isinstance(got, dict):
            for cid, name in got.items():
                if not isinstance(name, str) or not name.strip():
                    got = f"concept_names gives {show(cid)} the name {name!r}; a name is text"
                    break
        if len(self._names_cache) < _CONCEPT_CACHE:
            self._names_cache[text] = got
        return got

    def _file(self, cell: str) -> tuple[str, str, str]:
        """Check a ``file`` cell: (problem or "", absolute path, id source)."""
        last = self._last_file
        if last[0] == cell:
            return last[1], last[2], last[3]
        result = self._check_file(cell)
        self._last_file = (cell, *result)
        return result

    def _check_file(self, cell: str) -> tuple[str, str, str]:
        rel = posixpath.normpath(cell)
        if os.path.isabs(cell) or cell.startswith("\\") or _DRIVE.match(cell):
            return (
                f"file path {show(cell)} is absolute; give it relative to the CSV's folder",
                "",
                "",
            )
        if self._base_resolved is None:
            self._base_resolved = self._base.resolve()
        base = self._base_resolved
        try:
            full = (base / rel).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            return f"file path {show(cell)} cannot be resolved: {exc}", "", ""
        if not full.is_relative_to(base):
            return f"file path {show(cell)} points outside the CSV's folder", "", ""
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return f"file {show(cell)} does not exist", "", ""
        except (OSError, ValueError) as exc:
            return f"file {show(cell)} cannot be read: {exc}", "", ""
        if stat.S_ISDIR(st.st_mode):
            return f"file {show(cell)} is a folder, not an image", "", ""
        if not stat.S_ISREG(st.st_mode):
            return f"file {show(cell)} is not a regular file", "", ""
        if st.st_size > MAX_FILE_BYTES:
            mb = st.st_size / 2**20
            return f"file {show(cell)} is {mb:.1f} MiB; at most 20 MiB is allowed", "", ""
        if st.st_size == 0:
            return f"file {show(cell)} is empty", "", ""
        return "", str(full), "file:" + rel
