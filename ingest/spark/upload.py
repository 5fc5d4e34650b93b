"""``upload(df, ...)``: the same write without the data source API (Spark 3.5 and later).

Each partition runs the pipeline in a ``mapPartitions`` task over its ``Row`` objects
and yields one item, its :class:`~ingest.spark.task.TaskResult`; the driver collects
them (one per partition), merges them into one report and turns the failed rows into a
DataFrame. (``mapInArrow`` would hand the rows over as Arrow batches, but it needs pandas
on every worker; ``df.rdd`` needs a classic session, not Spark Connect.)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ingest.config import Config
from ingest.source.cells import check_header

from .options import SparkOptions, slots_from_conf
from .results import JobReport, failure_columns, merge, write_outputs
from .rows import column_names, row_chunks
from .task import TaskResult, run_chunks

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["partition_plan", "upload"]


def upload(
    df: DataFrame,
    config: Config | Mapping[str, object] | None = None,
    /,
    **options: object,
) -> tuple[JobReport, DataFrame]:
    """Upload ``df``'s rows; return the job's report and a DataFrame of the failed rows.

    ``config`` is a :class:`~ingest.config.Config` (its credentials included) or a
    mapping of the data source's options; ``options`` add to or override it. The rows
    are repartitioned by image (``url`` or ``file``) into ``partitions`` partitions
    (default: the application's task slots), so that one task creates each input; the
    request budget ``rps`` is split evenly across ``min(partitions, slots)`` tasks
    unless ``tasks`` says otherwise. ``report``/``failures`` paths are written on the
    driver as the data source does. The failed rows' DataFrame has the input's columns
    (as text), then ``partition``, ``line`` and ``error``.
    """
    if isinstance(config, Config):
        opts = SparkOptions.from_config(config, **options)
    else:
        opts = SparkOptions.parse({**(config or {}), **options})
    columns = column_names(df.columns)
    image, _ = check_header(columns, None)
    spark = df.sparkSession
    partitions, tasks = partition_plan(spark, opts)
    opts = opts.with_tasks(tasks)
    parts = df.repartition(partitions, df.columns[columns.index(image)])

    def run(rows: Iterable[Any]) -> Iterator[TaskResult]:
        yield run_chunks(row_chunks(rows), opts)

    started = time.time()
    results: list[TaskResult | None] = list(parts.rdd.mapPartitions(run).collect())
    job = merge(results, rps=opts.rps, elapsed_s=time.time() - started)
    write_outputs(job, columns, report_path=opts.report, failures_path=opts.failures)
    return job, _failures_frame(spark, job, columns)


def partition_plan(spark: SparkSession, options: SparkOptions) -> tuple[int, int]:
    """(partitions, tasks sharing the budget): ``partitions`` defaults to the task
    slots (``spark.default.parallelism``: the executors' cores); ``tasks`` to
    ``min(partitions, slots)``, the tasks that can run at once."""
    slots = _slots(spark)
    partitions = options.partitions or slots
    return partitions, options.tasks or min(partitions, slots)


def _slots(spark: SparkSession) -> int:
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:  # Spark Connect has no SparkContext: read the conf instead
        return slots_from_conf(lambda key: spark.conf.get(key, None)) or 2


def _failures_frame(spark: SparkSession, job: JobReport, columns: list[str]) -> DataFrame:
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    names = failure_columns(columns)[:-1]
    schema = StructType(
        [
            *(StructField(c, StringType()) for c in names),
            StructField("partition", IntegerType()),
            StructField("line", IntegerType()),
            StructField("error", StringType()),
        ]
    )
    rows: list[tuple[Any, ...]] = [
        (*(f.cells.get(c, "") for c in names), f.partition, f.line, f.error) for f in job.failures
    ]
    return spark.createDataFrame(rows, schema)
