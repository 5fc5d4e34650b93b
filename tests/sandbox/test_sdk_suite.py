"""The official SDK's own tests of inputs, annotations and datasets, against the sandbox.

clarifai-python's ``tests/test_data_upload.py`` (29 tests) and the dataset tests of
``tests/test_app.py`` (``-k dataset``, 5 tests), at the commit whose tests are those of
release 12.5.0 (the SDK installed here), pass against the real service in Clarifai's CI.
They run here unmodified, from the tarball in ``../shared/third-party/`` (extracted into a
temporary folder, never copied into the repository), against a fresh ``ingest sandbox``
started as a subprocess on a free loopback port, with the SDK's own environment
(``CLARIFAI_PAT``, ``CLARIFAI_USER_ID``, ``CLARIFAI_API_BASE``). ``sdk_plugin.py`` skips
the tests that download from the internet, with that reason, and makes the app the
deselected ``test_create_app`` would have made.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.sdk_plugin import INTERNET

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT.parent / "shared" / "third-party" / "clarifai-python-tests-8dbe72bb.tar.gz"
RUNS = (
    ("tests/test_data_upload.py",),
    ("tests/test_app.py", "-k", "dataset"),
)
"""The two pytest runs: 29 and 5 tests."""
EXPECTED = 34


def _missing() -> str | None:
    """Why the suite cannot run here, or None."""
    if not TARBALL.is_file():
        return f"the SDK's tests are not here ({TARBALL} is absent: a clone without ../shared)"
    for module, why in (
        ("clarifai", "the clarifai SDK (the bench extra) is not installed"),
        ("pycocotools", "pycocotools, which the SDK's COCO loader imports, is not installed"),
    ):
        if importlib.util.find_spec(module) is None:
            return why
    return None


@pytest.fixture
def sandbox_base() -> Iterator[str]:
    """A fresh ``ingest sandbox`` on a free loopback port; its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.sandbox", "--port", "0", "--processing", "0.05", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_sdk_suite_passes_against_the_sandbox(tmp_path: Path, sandbox_base: str) -> None:
    why = _missing()
    if why is not None:
        pytest.skip(why)
    with tarfile.open(TARBALL) as tar:
        tar.extractall(tmp_path / "sdk", filter="data")
    sdk = tmp_path / "sdk"
    env = {
        **os.environ,
        "CLARIFAI_PAT": "sandbox-pat",
        "CLARIFAI_USER_ID": "sandbox",
        "CLARIFAI_API_BASE": sandbox_base,
        "HOME": str(tmp_path),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PYTHONPATH": str(Path(__file__).parent),
    }
    env.pop("CLARIFAI_APP_ID", None)
    # the SDK's tests run under their own pytest.ini's warning rules, not this suite's
    # (tests/conftest.py makes every warning an error in the processes it starts)
    env.pop("PYTHONWARNINGS", None)
    outcomes: dict[str, str] = {}
    for n, run in enumerate(RUNS):
        report = tmp_path / f"report{n}.json"
        pytest_args = ["-c", str(sdk / "pytest.ini"), "--rootdir", str(sdk), "-q"]
        plugins = ["-p", "no:cacheprovider", "-p", "sdk_plugin", "--timeout", "240"]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *pytest_args, *plugins, *run],
            cwd=sdk,
            env={**env, "SDK_SUITE_REPORT": str(report)},
            capture_output=True,
            text=True,
            timeout=420,
        )
        assert report.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
        outcomes.update(json.loads(report.read_text()))
        tail = done.stdout[-4000:]
    counts = Counter(outcomes.values())
    summary = ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "skipped"))
    print(f"the SDK's {len(outcomes)} tests against the sandbox: {summary}")
    failed = sorted(node for node, outcome in outcomes.items() if outcome == "failed")
    skipped = sorted(node.rsplit("::", 1)[-1] for node, o in outcomes.items() if o == "skipped")
    assert len(outcomes) == EXPECTED, (summary, sorted(outcomes))
    assert not failed, f"{summary}; failed: {failed}\n{tail}"
    assert skipped == sorted(INTERNET), summary
