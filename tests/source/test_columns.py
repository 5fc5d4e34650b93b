"""Header cells ingest does not read: a near miss of a column it reads is an error with a
"did you mean" before anything is sent; anything else is a warning (in ``validate``, in
``upload`` and in the report's notes) that ``--strict`` refuses. For CSV files,
iterables of mappings and Spark's columns alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict

from ingest.errors import SourceError
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import open_rows
from ingest.source.cells import check_header
from ingest.source.columns import BOX_COLUMNS, IMAGE_COLUMNS, OPTIONAL_COLUMNS, near_miss
from ingest.spark.rows import column_names
from tests.test_cli import env, ingest_cmd

pytestmark = pytest.mark.anyio

READ = (*IMAGE_COLUMNS, *BOX_COLUMNS, *OPTIONAL_COLUMNS)
BOX = "left_col,top_row,right_col,bottom_row"


@pytest.mark.parametrize(
    ("cell", "meant"),
    [
        ("pos_concept", "pos_concepts"),  # a letter short
        ("metdata", "metadata"),
        ("neg_cnocepts", "neg_concepts"),  # two letters swapped: one edit
        ("URL", "url"),  # case, spaces and hyphens apart
        ("Pos Concepts", "pos_concepts"),
        ("input-id", "input_id"),
        ("uri", "url"),
        ("left", "left_col"),  # a word of the name alone
        ("concepts", "pos_concepts"),
        ("dataset", "dataset_id"),
        ("notes", None),
        ("label", None),
        ("split", None),
        ("id", None),  # too common a word to hint at input_id
        ("urls2", None),  # two edits from a name of four letters or fewer
        ("", None),
    ],
)
def test_what_a_cell_is_a_near_miss_of(cell: str, meant: str | None) -> None:
    assert near_miss(cell, READ) == meant


def test_a_near_miss_of_a_column_the_header_has_is_only_unknown() -> None:
    columns = ["url", *BOX.split(","), "pos_concepts", "pos_concept"]
    assert check_header(columns, None)[0] == "url"  # no error: a warning, from the source


async def cli(*args: str) -> tuple[int, str]:
    """``ingest ARGS`` as a user runs it, in its own process: (exit status, stderr)."""
    done = await anyio.run_process(ingest_cmd(*args), env=env(COLUMNS="300"), check=False)
    return done.returncode, done.stderr.decode()


def upload_args(sb: Sandbox, path: Path, *more: str) -> list[str]:
    report = path.with_name("report.json")
    return [
        "upload",
        str(path),
        "--base",
        sb.base_url,
        "--rps",
        "1000",
        "--no-progress",
        "--report-json",
        str(report),
        *more,
    ]


async def test_a_misspelt_optional_column_stops_validate_and_upload(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(
        f"url,{BOX},pos_concept,metdata\nhttps://x.example/a.jpg,0.1,0.1,0.5,0.5,cat,{{}}\n"
    )
    error = (
        f"ingest: error: {path}: line 1: column 'pos_concept' is not one ingest reads; "
        "did you mean 'pos_concepts'?\n"
    )
    with anyio.fail_after(60):
        assert await cli("validate", str(path)) == (2, error)
        async with Sandbox(SandboxOptions(rps=0)) as sb:
            assert await cli(*upload_args(sb, path)) == (2, error)
            assert not sb.inputs and not sb.stats.requests  # nothing was sent


async def test_a_misspelt_required_column_says_what_was_meant(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text("url,left_col,top_rwo,right_col,bottom_row\n")
    status, err = await cli("validate", str(path))
    assert (status, err) == (
        2,
        f"ingest: error: {path}: line 1: required column 'top_row' is missing from the "
        "header; column 'top_rwo' is not one ingest reads; did you mean 'top_row'?\n",
    )


async def test_an_unknown_column_is_a_warning_and_strict_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "boxes.csv"
    path.write_text(
        f"url,{BOX},pos_concepts,metadata,notes\n"
        'https://x.example/a.jpg,0.1,0.1,0.5,0.5,cat,"{""k"": 1}",checked by ann\n'
        "https://x.example/b.jpg,,,,,dog,,\n"
    )
    warning = (
        f"{path}: line 1: column 'notes' is not one ingest reads; its cells are not "
        "uploaded (they come back with a failed row)"
    )
    with anyio.fail_after(60):
        status, err = await cli("validate", str(path))
        assert status == 0 and f"warning: {warning}" in err
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
            status, err = await cli(*upload_args(sb, path, "--strict"))
            assert status == 2 and not sb.inputs and not sb.stats.requests
            assert err == (
                f"ingest: error: {warning}; nothing sent (strict mode refuses what it would "
                "not upload: --strict)\n"
            )
            status, err = await cli(*upload_args(sb, path))
            assert status == 0, err
            report: dict[str, Any] = json.loads((tmp_path / "report.json").read_text())
            assert warning in report["notes"]
            # the rows land with what the columns ingest reads say
            held = {
                inp.data.image.url: (
                    sorted(c.id for c in inp.data.concepts),
                    MessageToDict(inp.data.metadata),
                )
                for inp in sb.inputs.values()
            }
            assert held == {
                "https://x.example/a.jpg": ([], {"k": 1.0}),
                "https://x.example/b.jpg": (["dog"], {}),
            }
            [box] = [a for a in sb.annotations.values() if not isinstance(a, str)]
            assert [c.id for c in box.data.regions[0].data.concepts] == ["cat"]


async def test_the_failures_files_own_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "boxes.failures.csv"
    path.write_text(f"url,{BOX},line,error\nhttps://x.example/a.jpg,,,,,7,was broken\n")
    async with open_rows(path) as src:
        assert src.stats.warnings == []


async def test_iterables_of_mappings_follow_the_same_rule() -> None:
    row = {"url": "https://x.example/a.jpg", **dict.fromkeys(BOX.split(","), "")}
    with pytest.raises(SourceError, match="column 'metdata' is not one ingest reads; did you"):
        async with open_rows([{**row, "metdata": "{}"}]):
            pass  # pragma: no cover
    async with open_rows([{**row, "score": "0.9"}]) as src:
        assert src.stats.warnings == [
            "line 1: column 'score' is not one ingest reads; its cells are not uploaded "
            "(they come back with a failed row)"
        ]


def test_sparks_columns_are_checked_by_the_same_code() -> None:
    """The Spark entry checks a DataFrame's columns with ``check_header`` (after making
    the known names lower case, as Spark matches them): a misspelt one stops the write."""
    columns = column_names(["URL", *BOX.split(","), "Pos_Concept"])
    with pytest.raises(SourceError, match="'Pos_Concept' is not one ingest reads; did you mean"):
        check_header(columns, None)
