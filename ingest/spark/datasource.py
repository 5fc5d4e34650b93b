"""``clarifai``: a Spark 4 Python data source that writes a DataFrame into a Clarifai app.

::

    spark.dataSource.register(ClarifaiDataSource)
    (df.repartition(8, "url")
       .write.format("clarifai")
       .option("token", token).option("user_id", "me").option("app_id", "my-app")
       .option("tasks", 8)
       .option("report", "/dbfs/tmp/report.json")
       .option("failures", "/dbfs/tmp/failures.csv")
       .mode("append").save())

How Spark runs it (pyspark 4 ``pyspark.sql.datasource``; the guide:
https://spark.apache.org/docs/latest/api/python/tutorial/sql/python_data_source.html):
:meth:`writer` is called once, in a Python worker on the driver (not the user's
process: no session there, hence the ``tasks`` option); the writer is pickled to every
write task, where :meth:`ClarifaiWriter.write` receives the partition's rows (here as
Arrow record batches: :class:`~pyspark.sql.datasource.DataSourceArrowWriter`) and
returns a commit message; when every task succeeded the driver calls
:meth:`ClarifaiWriter.commit` with all of them, otherwise :meth:`ClarifaiWriter.abort`
with those that came back (``None`` for the tasks that failed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

from ingest.source.cells import check_header

from .options import SparkOptions
from .results import log, merge, write_outputs
from .rows import column_names
from .task import TaskResult, run_partition

__all__ = ["ClarifaiDataSource", "ClarifaiWriter"]


class ClarifaiDataSource(DataSource):
    """Writes rows into a Clarifai app: ``df.write.format("clarifai")``.

    The options are described in :mod:`ingest.spark.options`. Only ``append`` (and the
    default, ``errorifexists``, treated alike) makes sense: inputs are created or found
    present, never removed, so ``overwrite`` is refused.
    """

    @classmethod
    def name(cls) -> str:
        return "clarifai"

    def writer(self, schema: StructType, overwrite: bool) -> ClarifaiWriter:
        if overwrite:
            raise ValueError(
                "the clarifai data source only adds to an app; use mode('append') "
                "(inputs already there are found present, never sent twice)"
            )
        options = SparkOptions.parse(dict(self.options))
        columns = column_names(schema.fieldNames())
        check_header(columns, None)  # a missing column fails here, before any task
        return ClarifaiWriter(options, columns)


class ClarifaiWriter(DataSourceArrowWriter):
    """Runs the upload pipeline in each write task; merges the reports on the driver."""

    def __init__(self, options: SparkOptions, columns: list[str]) -> None:
        self.options = options
        self.columns = columns
        self.created = time.time()

    def __repr__(self) -> str:
        return f"ClarifaiWriter({self.options!r})"

    def write(self, iterator: Iterator[pa.RecordBatch]) -> TaskResult:
        return run_partition(iterator, self.options)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        self._finish(messages, aborted=False)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        """The job failed: report what the finished tasks did. Rows they sent stay in
        the app; writing the same DataFrame again finds them present."""
        self._finish(messages, aborted=True)
        done = sum(1 for m in messages if m is not None)
        log(
            f"write failed: {done} of {len(messages)} tasks had finished; what was sent stays "
            "in the app, and writing the same rows again sends nothing twice",
            warning=True,
        )

    def _finish(self, messages: list[Any], *, aborted: bool) -> None:
        results = [m if isinstance(m, TaskResult) else None for m in messages]
        job = merge(
            results,
            rps=self.options.rps,
            elapsed_s=time.time() - self.created,
            aborted=aborted,
        )
        write_outputs(
            job,
            self.columns,
            report_path=self.options.report,
            failures_path=self.options.failures,
        )
