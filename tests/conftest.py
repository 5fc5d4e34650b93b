"""Shared test set-up: every async test runs on anyio's asyncio backend, and every Python
process a test starts runs with the suite's own warning filters (every warning an error)."""

from __future__ import annotations

import os

import pytest

from benchmarks.strict import pythonwarnings


def pytest_configure(config: pytest.Config) -> None:
    # inherited by every process a test starts (the command line, the sandbox, the peers,
    # Spark's JVM and through it its Python workers), whoever builds its command line
    os.environ["PYTHONWARNINGS"] = pythonwarnings()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
