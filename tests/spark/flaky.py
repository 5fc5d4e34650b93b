"""A ``clarifai`` data source whose first attempt at partition 0 fails after sending.

Imported by the tests' Spark workers (by reference), so it lives in a module of its own
that imports nothing from pytest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from pyspark.sql.types import StructType

from ingest.spark import ClarifaiDataSource, ClarifaiWriter
from ingest.spark.task import TaskResult


class FlakyDataSource(ClarifaiDataSource):
    """``clarifai_flaky``: option ``flag_file`` names a file created by the failing
    attempt; an attempt that finds it does not fail, unless option ``always`` is set.
    With ``always``, partition 0 fails only once every other partition has finished (each
    leaves ``flag_file.done-N``), so that the job is aborted after them, not during."""

    @classmethod
    def name(cls) -> str:
        return "clarifai_flaky"

    def writer(self, schema: StructType, overwrite: bool) -> ClarifaiWriter:
        flag = self.options.pop("flag_file")
        always = self.options.pop("always", "") == "true"
        inner = super().writer(schema, overwrite)
        return FlakyWriter(inner, flag, always=always)


class FlakyWriter(ClarifaiWriter):
    def __init__(self, inner: ClarifaiWriter, flag: str, *, always: bool = False) -> None:
        super().__init__(inner.options, inner.columns)
        self.flag = flag
        self.always = always

    def write(self, iterator: Iterator[pa.RecordBatch]) -> TaskResult:
        result = super().write(iterator)  # everything of the partition is sent
        flag = Path(self.flag)
        if result.partition != 0:
            Path(f"{flag}.done-{result.partition}").touch()
        elif self.always or not flag.exists():
            if self.always:
                _wait_for(Path(f"{flag}.done-1"))
            flag.write_text(f"attempt {result.attempt} failed on purpose\n")
            raise RuntimeError("failing the first attempt on purpose, after sending")
        return result


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    """Until ``path`` exists (another Python worker makes it), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not made within {timeout:g} s")
        time.sleep(0.05)
