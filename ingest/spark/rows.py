"""Spark's rows as the library's reader takes them: mappings of column name to text.

A write task receives its partition as Arrow record batches (Spark's Python data
sources and ``mapInArrow`` both work that way); each column is turned into text at
once, then the rows are zipped up:

* text columns as they are, nulls as empty cells;
* numbers (``left_col``... as double, float, decimal or integer) through Arrow's cast
  to text, which writes the shortest form that reads back as the same value;
* ``pos_concepts``/``neg_concepts`` as ``|``-joined text, or arrays of text joined with
  ``|`` (so an array element may not itself contain ``|``);
* ``metadata`` as JSON text, or a map or struct written as a JSON object;
* any other column as text (JSON for nested values): the reader ignores it, and it
  comes back with a failed row.

Column names are matched without regard to case, as Spark does.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.source.cells import SEED_COLUMNS

__all__ = ["KNOWN_COLUMNS", "arrow_chunks", "batch_rows", "column_names", "row_chunks"]

KNOWN_COLUMNS = (*SEED_COLUMNS, "file", "input_id")
_CONCEPTS = ("pos_concepts", "neg_concepts")


def column_names(names: Iterable[str]) -> list[str]:
    """The reader's names for Spark's columns: known names in lower case."""
    return [n.lower() if n.lower() in KNOWN_COLUMNS else n for n in names]


def batch_rows(batches: Iterable[pa.RecordBatch]) -> Iterator[dict[str, str]]:
    """One mapping per row of ``batches``, in order."""
    for batch in batches:
        names = column_names(batch.schema.names)
        columns = [_text(name, column) for name, column in zip(names, batch.columns, strict=True)]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


def arrow_chunks(batches: Iterable[pa.RecordBatch]) -> Iterator[list[dict[str, str]]]:
    """The rows of each record batch, a list per batch."""
    for batch in batches:
        yield list(batch_rows((batch,)))


def row_chunks(rows: Iterable[Any], *, size: int = 1024) -> Iterator[list[dict[str, str]]]:
    """Spark :class:`~pyspark.sql.Row` objects as mappings, ``size`` at a time.

    The same text as :func:`batch_rows` gives, from Python values: a float through
    ``repr`` (the shortest text that reads back the same), a list of concepts joined
    with ``|``, a map or struct (``Row``) as a JSON object.
    """
    it = iter(rows)
    names: list[str] | None = None
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        if names is None:
            names = column_names(chunk[0].__fields__)
        yield [
            {name: _cell(name, value) for name, value in zip(names, row, strict=True)}
            for row in chunk
        ]


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list) and name in _CONCEPTS:
        return _concepts(value)
    if isinstance(value, (list, tuple, dict)):  # a Row is a tuple
        return json.dumps(_row_plain(value), default=str, ensure_ascii=False)
    return str(value)


def _row_plain(value: Any) -> Any:
    as_dict = getattr(value, "asDict", None)
    if as_dict is not None:
        return {str(k): _row_plain(v) for k, v in as_dict().items()}
    if isinstance(value, dict):
        return {str(k): _row_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_row_plain(v) for v in value]
    return value


def _text(name: str, column: pa.Array) -> list[str]:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _strings(column)
    if pa.types.is_null(kind):
        return [""] * len(column)
    if name in _CONCEPTS and _is_list(kind):
        return [_concepts(v) for v in column.to_pylist()]
    if _is_list(kind) or pa.types.is_struct(kind) or pa.types.is_map(kind):
        return [_json(v, map_type=pa.types.is_map(kind)) for v in column.to_pylist()]
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [v.decode("utf-8", "replace") if v is not None else "" for v in column.to_pylist()]
    try:
        return _strings(pc.cast(column, pa.string()))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return ["" if v is None else str(v) for v in column.to_pylist()]


def _strings(column: pa.Array) -> list[str]:
    filled = pc.fill_null(column, "") if column.null_count else column
    values: list[str] = filled.to_pylist()
    return values


def _is_list(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _concepts(value: list[Any] | None) -> str:
    if not value:
        return ""
    return "|".join(str(v) for v in value if v is not None)


def _json(value: Any, *, map_type: bool) -> str:
    if value is None:
        return ""
    return json.dumps(_plain(value, map_type=map_type), default=str, ensure_ascii=False)


def _plain(value: Any, *, map_type: bool = False) -> Any:
    """Arrow's Python values as JSON values: a map arrives as a list of (key, value)."""
    if map_type and isinstance(value, list):
        return {str(k): _plain(v) for k, v in value}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
