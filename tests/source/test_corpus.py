"""The bad-input corpus: every file gives exactly the expected messages, and its valid rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.source import validate_file
from ingest.source.csvfile import CsvSource

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())


async def _read(path: Path, chunk_size: int) -> dict[str, Any]:
    try:
        async with CsvSource(path, chunk_size=chunk_size) as src:
            invalid: list[str] = []
            valid = 0
            async for item in src:
                if isinstance(item, InvalidRow):
                    invalid.append(item.message())
                else:
                    assert isinstance(item, Row)
                    valid += 1
            return {"invalid": invalid, "valid": valid}
    except SourceError as exc:
        return {"error": f"{type(exc).__name__}: " + str(exc).replace(str(path), "{path}")}


def test_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.glob("*.csv")}
    assert files == set(EXPECTED)
    assert len(files) >= 30


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_corpus_file(name: str) -> None:
    with anyio.fail_after(10):
        got = await _read(CORPUS / name, 256 * 1024)
    assert got == EXPECTED[name]
    if "error" not in got and got["invalid"]:
        assert got["valid"] >= 1, "the valid rows of a file with a bad row must still come through"


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_size", [1, 7, 64])
async def test_corpus_same_with_tiny_chunks(chunk_size: int) -> None:
    # Records cut at every possible place: results (and line numbers) must not change.
    for name in sorted(EXPECTED):
        if (CORPUS / name).stat().st_size > 50_000:
            continue  # the large files make 1-byte chunks slow; covered with 64
        got = await _read(CORPUS / name, chunk_size if chunk_size > 1 else 1)
        assert got == EXPECTED[name], name


@pytest.mark.anyio
async def test_large_files_with_small_chunks() -> None:
    for name in ("big_field.csv", "metadata_huge.csv", "metadata_deep.csv"):
        assert await _read(CORPUS / name, 4096) == EXPECTED[name]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_validate_file_agrees(name: str) -> None:
    expected = EXPECTED[name]
    with anyio.fail_after(10):
        if "error" in expected:
            with pytest.raises(SourceError):
                await validate_file(CORPUS / name)
            return
        summary = await validate_file(CORPUS / name)
    assert [i.message() for i in summary.invalid] == expected["invalid"]
    assert summary.valid == expected["valid"]
    assert summary.rows == expected["valid"] + len(expected["invalid"])
