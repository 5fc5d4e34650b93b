"""The bad-input corpus, uploaded: each bad row is reported with its exact message
(line and column), and the valid rows of the same file still land."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import anyio
import pytest

from ingest import Ingester, IngestError, Outcome, Status
from ingest.sandbox import Sandbox, SandboxOptions
from tests.helpers import sandbox_config

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "source" / "corpus"


class Expected(TypedDict, total=False):
    """One entry of expected.json: either ``error``, or ``invalid`` messages and ``valid`` count."""

    error: str
    invalid: list[str]
    valid: int


EXPECTED: dict[str, Expected] = json.loads((CORPUS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_corpus_file_uploads_its_valid_rows(name: str) -> None:
    """Each file against its own sandbox, which refuses a URL already stored under
    another input id (as Clarifai does): the client's outcomes, and what the sandbox
    stored, are exactly the valid rows."""
    expected = EXPECTED[name]
    path = CORPUS / name
    options = SandboxOptions(rps=0, processing=(0.0, 0.01))
    with anyio.fail_after(30):
        async with (
            Sandbox(options) as sb,
            Ingester(sandbox_config(sb, linger=0.05, processing_estimate=0.02)) as ing,
        ):
            if "error" in expected:
                with pytest.raises(IngestError) as caught:
                    await ing.run(path)
                message = f"{type(caught.value).__name__}: {caught.value}"
                assert message == expected["error"].format(path=path), name
                assert not sb.inputs and not sb.annotations, name
                return
            failed: list[str] = []
            landed: list[Outcome] = []
            async with ing.stream(path) as outcomes:
                async for outcome in outcomes:
                    if outcome.status is Status.FAILED:
                        failed.append(outcome.error)
                    else:
                        landed.append(outcome)
            stored_inputs = set(sb.inputs)
            stored_annotations = {a: ann.input_id for a, ann in sb.annotations.items()}
    assert sorted(failed) == sorted(expected["invalid"]), name
    assert len(landed) == expected["valid"], name
    # what the sandbox holds: one input per image with a valid row, one annotation per
    # valid box row, on that row's input; nothing from the invalid rows
    assert stored_inputs == {o.input_id for o in landed}, name
    assert stored_annotations == {o.annotation_id: o.input_id for o in landed if o.annotation_id}


MESSAGE = re.compile(r"line (\d+), column '([^']*)': (.*)")


def table_rows(text: str) -> set[tuple[str, ...]]:
    """The cells of each row of the command line's tables (drawn with box characters)."""
    return {
        tuple(cell.strip() for cell in line.strip().strip("│").split("│"))
        for line in text.splitlines()
        if line.strip().startswith("│")
    }


def test_the_command_line_shows_messages_never_a_traceback() -> None:
    """Every expected message, whole: an invalid row as the table's (line, column,
    reason) row, a file that cannot be used as its error line."""
    wide = {**os.environ, "COLUMNS": "300"}  # no cell wrapped over two lines
    for name in ("box_nan.csv", "metadata_list.csv", "invalid_utf8.csv", "missing_url_column.csv"):
        path = CORPUS / name
        done = subprocess.run(
            [sys.executable, "-m", "ingest", "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=wide,
        )
        assert "Traceback" not in done.stdout + done.stderr
        expected = EXPECTED[name]
        if "error" in expected:
            assert done.returncode == 2, name
            message = expected["error"].format(path=path).split(": ", 1)[1]
            assert f"ingest: error: {message}" in done.stderr, (name, done.stderr)
            continue
        assert done.returncode == 1, name
        rows = table_rows(done.stdout)
        for message in expected["invalid"]:
            match = MESSAGE.fullmatch(message)
            assert match, message
            assert match.groups() in rows, (name, message, done.stdout)
