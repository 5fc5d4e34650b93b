"""Scale-out on Spark: write a DataFrame into Clarifai from every executor.

Installed with the extra ``ingest[spark]``. Two entries:

* Spark 4: the Python data source :class:`ClarifaiDataSource`, named ``clarifai``::

      spark.dataSource.register(ClarifaiDataSource)
      df.repartition(8, "url").write.format("clarifai").option("token", ...)...save()

* any Spark from 3.5: :func:`upload`, which repartitions by image itself and returns
  the report and a DataFrame of the failed rows.

Each write task runs the library's pipeline over its partition with its share of the
app's request budget; the driver merges the tasks' reports into one
(:class:`JobReport`). Options: :mod:`ingest.spark.options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .options import SparkOptions
from .results import JobReport
from .task import FailedRow, TaskResult
from .upload import upload

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from .datasource import ClarifaiDataSource, ClarifaiWriter

__all__ = [
    "ClarifaiDataSource",
    "ClarifaiWriter",
    "FailedRow",
    "JobReport",
    "SparkOptions",
    "TaskResult",
    "register",
    "upload",
]


def register(spark: SparkSession) -> None:
    """``spark.dataSource.register(ClarifaiDataSource)`` (Spark 4)."""
    from .datasource import ClarifaiDataSource

    spark.dataSource.register(ClarifaiDataSource)


def __getattr__(name: str) -> Any:
    # the data source needs Spark 4's pyspark.sql.datasource; upload() works without it
    if name in ("ClarifaiDataSource", "ClarifaiWriter"):
        from . import datasource

        return getattr(datasource, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
