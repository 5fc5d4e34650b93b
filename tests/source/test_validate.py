"""Rows as built by the validator: ids, boxes, concepts, metadata, files, iterable sources."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from ingest import ids
from ingest.errors import MissingColumnError, SourceError
from ingest.model import Box, InvalidRow, Row
from ingest.source import DatasetPath, open_rows

HEADER = "url,left_col,top_row,right_col,bottom_row,pos_concepts,neg_concepts,metadata,extra\n"


async def _items(source: object, **kw: object) -> list[Row | InvalidRow]:
    with anyio.fail_after(10):
        async with open_rows(source, **kw) as src:  # type: ignore[arg-type]
            return [item async for item in src]


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8", newline="")
    return p


@pytest.mark.anyio
async def test_box_row_fields(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        HEADER
        + 'https://x.example/a.jpg,0.1,0.2,0.3,0.4, cat | dog|cat||, bird ,"{""k"": [1]}",z\n',
    )
    [row] = await _items(p)
    assert isinstance(row, Row)
    assert row.line == 2
    assert row.url == "https://x.example/a.jpg" and row.path == ""
    assert row.box == Box(0.1, 0.2, 0.3, 0.4)
    assert row.pos_concepts == ("cat", "dog") and row.neg_concepts == ("bird",)
    assert row.metadata == {"k": [1]}
    assert row.input_id == ids.input_id("https://x.example/a.jpg")
    assert row.annotation_id == ids.annotation_id(
        row.input_id, (0.1, 0.2, 0.3, 0.4), ("cat", "dog"), ("bird",)
    )
    assert row.raw["extra"] == "z" and row.raw["pos_concepts"] == " cat | dog|cat||"


@pytest.mark.anyio
async def test_image_level_row_and_same_input_far_apart(tmp_path: Path) -> None:
    rows = [HEADER.rstrip("\n")]
    rows.append("https://x.example/a.jpg,,,,,cat,,,")
    rows += [f"https://x.example/{i}.jpg,0,0,1,1,,,," for i in range(50)]
    rows.append("https://x.example/a.jpg,0.5,0.5,0.75,0.75,cat,,,")
    items = await _items(_write(tmp_path, "\n".join(rows) + "\n"))
    first, last = items[0], items[-1]
    assert isinstance(first, Row) and isinstance(last, Row)
    assert first.box is None and first.annotation_id == "" and first.metadata is None
    assert last.box == Box(0.5, 0.5, 0.75, 0.75) and last.line == 53
    assert first.input_id == last.input_id


@pytest.mark.anyio
async def test_input_id_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "url,left_col,top_row,right_col,bottom_row,input_id\nhttps://x.example/a,,,,,Img_1\n",
    )
    [row] = await _items(p)
    assert isinstance(row, Row) and row.input_id == "Img_1"


@pytest.mark.anyio
async def test_dataset_id_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "url,left_col,top_row,right_col,bottom_row,dataset_id\n"
        "https://x.example/a,,,,,train\nhttps://x.example/b,,,,,not ok\n",
    )
    row, bad = await _items(p)
    assert isinstance(row, Row) and row.dataset_id == "train"
    assert isinstance(bad, InvalidRow)
    assert bad.message() == (
        "line 3, column 'dataset_id': dataset_id 'not ok' contains a space; ids may use "
        "only A-Z, a-z, 0-9, '_' and '-', 1 to 128 characters"
    )


@pytest.mark.anyio
async def test_header_names_are_case_sensitive(tmp_path: Path) -> None:
    """``URL`` is not read as ``url``: the column is missing, and the message says which
    cell looks meant as it."""
    p = _write(tmp_path, "URL,left_col,top_row,right_col,bottom_row\nhttps://x.example/a,,,,\n")
    with pytest.raises(MissingColumnError) as err:
        await _items(p)
    assert err.value.column == "url"
    assert str(err.value) == (
        f"{p}: line 1: required column 'url' is missing from the header; "
        "column 'URL' is not one ingest reads; did you mean 'url'?"
    )


@pytest.mark.anyio
async def test_columns_and_path(tmp_path: Path) -> None:
    p = _write(tmp_path, " url ,left_col,top_row,right_col,bottom_row\n")
    async with open_rows(p) as src:
        assert src.columns == ["url", "left_col", "top_row", "right_col", "bottom_row"]
        assert src.path == p
        assert [i async for i in src] == []


# -- local files ---------------------------------------------------------------

FILE_HEADER = "file,left_col,top_row,right_col,bottom_row\n"


@pytest.mark.anyio
async def test_file_rows(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"jpeg")
    p = _write(tmp_path, FILE_HEADER + "img/a.jpg,0.1,0.1,0.2,0.2\n./img/a.jpg,,,,\n")
    a, b = await _items(p)
    assert isinstance(a, Row) and isinstance(b, Row)
    assert a.path == str((tmp_path / "img" / "a.jpg").resolve()) and a.url == ""
    assert a.input_id == b.input_id == ids.input_id("file:img/a.jpg")


@pytest.mark.anyio
async def test_file_symlink_escaping_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "secret.jpg", data / "link.jpg")
    p = _write(data, FILE_HEADER + "link.jpg,,,,\n")
    [item] = await _items(p)
    assert isinstance(item, InvalidRow)
    assert item.message() == (
        "line 2, column 'file': file path 'link.jpg' points outside the CSV's folder"
    )


@pytest.mark.anyio
async def test_file_too_large_and_empty(tmp_path: Path) -> None:
    (tmp_path / "big.jpg").write_bytes(b"")
    os.truncate(tmp_path / "big.jpg", 20 * 1024 * 1024 + 1)  # sparse: no disk used
    (tmp_path / "empty.jpg").write_bytes(b"")
    p = _write(tmp_path, FILE_HEADER + "big.jpg,,,,\nempty.jpg,,,,\n")
    big, empty = await _items(p)
    assert isinstance(big, InvalidRow) and isinstance(empty, InvalidRow)
    assert big.reason == "file 'big.jpg' is 20.0 MiB; at most 20 MiB is allowed"
    assert empty.reason == "file 'empty.jpg' is empty"


# -- iterable sources ----------------------------------------------------------

GOOD = {
    "url": "https://x.example/a.jpg",
    "left_col": "0.1",
    "top_row": "0.1",
    "right_col": "0.5",
    "bottom_row": "0.5",
    "pos_concepts": "cat",
}


@pytest.mark.anyio
async def test_iterable_source() -> None:
    rows = [
        GOOD,
        {**GOOD, "left_col": "2"},
        {**GOOD, "left_col": None, "top_row": None, "right_col": None, "bottom_row": None},
    ]
    items = await _items(rows)
    assert [type(i) for i in items] == [Row, InvalidRow, Row]
    assert [i.line for i in items] == [2, 3, 4]
    assert isinstance(items[2], Row) and items[2].box is None


@pytest.mark.anyio
async def test_async_iterable_source_and_numbers() -> None:
    async def gen() -> AsyncIterator[dict[str, object]]:
        yield {**GOOD, "left_col": 0.25}
        yield "not a mapping"  # type: ignore[misc]

    a, b = await _items(gen())
    assert isinstance(a, Row) and a.box == Box(0.25, 0.1, 0.5, 0.5)
    assert isinstance(b, InvalidRow) and b.line == 3 and "not a mapping" in b.reason


@pytest.mark.anyio
async def test_iterable_missing_column_raises_on_open() -> None:
    with pytest.raises(MissingColumnError):
        async with open_rows([{"url": "https://x.example/a", "left_col": "0.1"}]):
            pass  # pragma: no cover


@pytest.mark.anyio
async def test_iterable_empty_and_base_dir(tmp_path: Path) -> None:
    assert await _items([]) == []
    (tmp_path / "a.jpg").write_bytes(b"x")
    row = {"file": "a.jpg", "left_col": "", "top_row": "", "right_col": "", "bottom_row": ""}
    [item] = await _items([row], base_dir=tmp_path)
    assert isinstance(item, Row) and item.path == str((tmp_path / "a.jpg").resolve())


@pytest.mark.anyio
async def test_iterating_without_async_with_opens_and_closes(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + "https://x.example/a.jpg,,,,,,,,\n")
    src = open_rows(p)
    with anyio.fail_after(5):
        items = [i async for i in src]
    assert len(items) == 1 and src.columns[0] == "url"


@pytest.mark.anyio
async def test_one_unnamed_column_is_kept_two_are_an_error(tmp_path: Path) -> None:
    p = _write(tmp_path, "url,left_col,top_row,right_col,bottom_row,\nhttps://x.example/a,,,,,z\n")
    [row] = await _items(p)
    assert isinstance(row, Row) and row.raw[""] == "z"
    p = _write(tmp_path, "url,left_col,top_row,right_col,bottom_row,,\n")
    with pytest.raises(SourceError) as err:
        await _items(p)
    assert str(err.value) == (
        f"{p}: line 1: columns 6 and 7 of the header have no name; "
        "name them or remove the extra commas"
    )


@pytest.mark.anyio
async def test_concept_names_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "url,left_col,top_row,right_col,bottom_row,pos_concepts,concept_names\n"
        'https://x.example/a,,,,,cat|traffic-light,"{""traffic-light"": ""Traffic Light""}"\n'
        'https://x.example/b,,,,,cat,"{""dog"": ""Dog""}"\n'
        'https://x.example/c,,,,,cat,"{""cat"": 1}"\n'
        "https://x.example/d,,,,,cat,\n",
    )
    named, stray, number, plain = await _items(p)
    assert isinstance(named, Row) and named.concept_names == {"traffic-light": "Traffic Light"}
    assert isinstance(stray, InvalidRow) and stray.message() == (
        "line 3, column 'concept_names': concept_names names 'dog', which is not a concept "
        "of the row"
    )
    assert isinstance(number, InvalidRow) and number.reason == (
        "concept_names gives 'cat' the name 1; a name is text"
    )
    assert isinstance(plain, Row) and plain.concept_names is None
    with pytest.raises(SourceError, match="the concept_names column names concepts given by id"):
        await _items(DatasetPath(p, concept_ids="names"))
