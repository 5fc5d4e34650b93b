"""Server-side refusals: a bad key, missing scopes, an unknown app.

Each ends the upload with exit status 2 and one sentence saying what to fix, after
at most one call, with nothing stored.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ingest.sandbox import Sandbox, SandboxOptions
from tests.helpers import make_dataset, run_module

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("credentials", "sentence"),
    [
        (
            ["--pat", "not-a-token", "--user-id", "sandbox", "--app-id", "sandbox-app"],
            "rejected; check --pat/--api-key",
        ),
        (
            ["--api-key", "read-only-key"],
            "lacks the scopes this upload needs (PostInputs needs Inputs:Add); create a key "
            "with Inputs:Add, Inputs:Get, Inputs:Patch, Annotations:Add, Datasets:Add",
        ),
        (
            ["--pat", "sandbox-pat", "--user-id", "sandbox", "--app-id", "no-such-app"],
            "does not exist; check --user-id/--app-id",
        ),
    ],
    ids=["bad-key", "missing-scopes", "unknown-app"],
)
async def test_refusal_exits_2_with_one_sentence_after_one_call(
    tmp_path: Path, credentials: list[str], sentence: str
) -> None:
    csv_path = make_dataset(30).write(tmp_path / "data.csv")
    options = SandboxOptions(
        rps=0, processing=(0.01, 0.02), scoped_keys={"read-only-key": ("Inputs:Get",)}
    )
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            args = ("upload", str(csv_path), "--base", sb.base_url, "--no-progress")
            done = await run_module("ingest", *args, *credentials)
            assert sum(sb.stats.requests.values()) == 1
            assert sb.inputs == {}
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert sentence in err
    assert "Traceback" not in err
    assert "not-a-token" not in err + done.stdout.decode()
    # one sentence: a single line of error text
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
