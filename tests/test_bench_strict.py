"""Every Python process the tests and benchmarks start turns warnings into errors, with
only the exceptions the test suite names (pyproject.toml), each as narrow there as here."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from benchmarks import strict

WARN = """
import warnings
warnings.warn_explicit({message!r}, DeprecationWarning, "x.py", 1, module={module!r})
print("still running")
"""

NAMED = ("datetime.datetime.utcnow() is deprecated", "google.protobuf.internal.well_known_types")


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def warning(message: str, module: str) -> str:
    return WARN.format(message=message, module=module)


def test_the_filters_are_the_test_suites() -> None:
    with strict.PYPROJECT.open("rb") as fh:
        ini = tomllib.load(fh)["tool"]["pytest"]["ini_options"]
    assert strict.filters() == tuple(ini["filterwarnings"])
    assert strict.filters()[0] == "error"
    assert strict.python("-c", "pass")[:3] == [sys.executable, "-W", "error"]


@pytest.mark.parametrize("how", ["-W options", "PYTHONWARNINGS"])
def test_a_warning_in_a_started_process_is_an_error(how: str) -> None:
    """As a benchmark starts a client (``-W``), and as a test starts any command (it
    inherits ``PYTHONWARNINGS`` from the test process, set by tests/conftest.py)."""
    code = warning("something is deprecated", "ingest.client")
    command = strict.python("-c", code) if how == "-W options" else [sys.executable, "-c", code]
    done = run(command)
    assert done.returncode != 0 and "still running" not in done.stdout
    assert "DeprecationWarning: something is deprecated" in done.stderr


@pytest.mark.parametrize("how", ["-W options", "PYTHONWARNINGS"])
def test_only_the_named_protobuf_deprecation_is_let_through(how: str) -> None:
    """protobuf's own ``utcnow()`` deprecation in its well_known_types passes; the same
    message from another google module, or another deprecation from that module, fails."""
    cases = {
        NAMED: 0,
        (NAMED[0], "google.rpc.status_pb2"): 1,
        ("Call to deprecated create function FieldDescriptor()", NAMED[1]): 1,
    }
    for (message, module), fails in cases.items():
        code = warning(message, module)
        command = strict.python("-c", code) if how == "-W options" else [sys.executable, "-c", code]
        done = run(command)
        assert (done.returncode != 0) == bool(fails), (message, module, done.stderr)


def test_a_filter_that_means_two_things_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``google.*`` is a regular expression to pytest and literal text to ``-W``."""
    page = tmp_path / "pyproject.toml"
    page.write_text(
        '[tool.pytest.ini_options]\nfilterwarnings = ["error", '
        '"ignore::DeprecationWarning:google.*"]\n'
    )
    monkeypatch.setattr(strict, "PYPROJECT", page)
    strict.filters.cache_clear()
    try:
        with pytest.raises(ValueError, match="write its message and module as plain text"):
            strict.filters()
    finally:
        strict.filters.cache_clear()
