"""The bad-input corpus, uploaded: each bad row is reported with its exact message
(line and column), and the valid rows of the same file still land."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import anyio
import pytest

from ingest import Config, Ingester, IngestError, Status
from ingest.sandbox import Sandbox, SandboxOptions

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "source" / "corpus"


class Expected(TypedDict, total=False):
    """One entry of expected.json: either ``error``, or ``invalid`` messages and ``valid`` count."""

    error: str
    invalid: list[str]
    valid: int


EXPECTED: dict[str, Expected] = json.loads((CORPUS / "expected.json").read_text())


async def test_every_corpus_file_uploads_its_valid_rows() -> None:
    checked = 0
    with anyio.fail_after(120):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
            config = Config(
                pat="sandbox-pat",
                user_id="sandbox",
                app_id="sandbox-app",
                base=sb.base_url,
                linger=0.05,
                processing_estimate=0.02,
            )
            for name, expected in sorted(EXPECTED.items()):
                path = CORPUS / name
                async with Ingester(config) as ing:
                    if "error" in expected:
                        with pytest.raises(IngestError):
                            await ing.run(path)
                        continue
                    failed: list[str] = []
                    ok = 0
                    async with ing.stream(path) as outcomes:
                        async for outcome in outcomes:
                            if outcome.status is Status.FAILED:
                                failed.append(outcome.error)
                            else:
                                ok += 1
                assert sorted(failed) == sorted(expected["invalid"]), name
                assert ok == expected["valid"], name
                checked += 1
    assert checked >= 30


def test_the_command_line_shows_messages_never_a_traceback() -> None:
    for name in ("box_nan.csv", "metadata_list.csv", "invalid_utf8.csv", "missing_url_column.csv"):
        done = subprocess.run(
            [sys.executable, "-m", "ingest", "validate", str(CORPUS / name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in done.stdout + done.stderr
        assert done.returncode in (1, 2), name
        expected = EXPECTED[name]
        shown = " ".join((done.stdout + done.stderr).split())
        for message in expected.get("invalid", []):
            line = message.split(",")[0]  # "line N"
            assert line.split()[1] in shown, (name, shown)
