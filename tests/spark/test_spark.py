"""Writes from a local Spark session (``local[2,2]``) into the sandbox over loopback.

The master ``local[2,2]`` gives two task slots and lets a task fail once (``local[N,F]``:
https://spark.apache.org/docs/latest/submitting-applications.html#master-urls). One
session serves the module: the JVM's output (driver and executors alike: local
mode runs both, and the Python workers' stderr is copied there) goes to a file the
secret test reads, and an event log (what the Spark UI and history server render)
goes to a folder beside it. Each test gets a fresh sandbox in a thread of this process,
on 127.0.0.1 and a free port; the write tasks run in Spark's Python workers, separate
processes that reach it over TCP.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")

from anyio.from_thread import BlockingPortal, start_blocking_portal
from pyspark import SparkConf
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from benchmarks.spark import local_session
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source.cells import SEED_COLUMNS
from ingest.spark import upload
from tests.helpers import COLUMNS, Dataset, make_dataset
from tests.spark.flaky import FlakyDataSource
from tests.test_pipeline import assert_server_holds

ROOT = Path(__file__).resolve().parents[2]
FAST = {"rps": 0, "processing": (0.05, 0.2)}
CREDS = {"user_id": "sandbox", "app_id": "sandbox-app"}
TUNING = {
    "linger": "0.1",
    "processing_estimate": "0.2",
    "backoff": "0.05",
    "backoff_max": "0.5",
    "call_timeout": "5",
}


@dataclass
class Session:
    spark: SparkSession
    log: Path
    events: Path


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("spark")
    events = folder / "events"
    events.mkdir()
    log = folder / "jvm.log"
    env = pytest.MonkeyPatch()
    # the workers run this interpreter (the venv's, with pyarrow) and import tests.*
    env.setenv("PYSPARK_PYTHON", sys.executable)
    env.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    conf = (
        SparkConf()
        .setMaster("local[2,2]")  # two task slots; a task may fail once (maxFailures 2)
        .setAppName("ingest-spark-tests")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.ui.enabled", "false")
        .set("spark.sql.shuffle.partitions", "2")
        .set("spark.default.parallelism", "2")
        .set("spark.eventLog.enabled", "true")
        .set("spark.eventLog.dir", events.as_uri())
        .set("spark.eventLog.compress", "false")
    )
    try:
        with local_session(conf, log) as (spark, _):
            spark.dataSource.register(FlakyDataSource)
            yield Session(spark, log, events)
    finally:
        env.undo()


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal(backend="asyncio") as p:
        yield p


@contextmanager
def sandbox(portal: BlockingPortal, **options: Any) -> Iterator[Sandbox]:
    with portal.wrap_async_context_manager(Sandbox(SandboxOptions(**{**FAST, **options}))) as sb:
        yield sb


@pytest.fixture
def sb(portal: BlockingPortal) -> Iterator[Sandbox]:
    """The test's own sandbox, with the module's quick settings."""
    with sandbox(portal) as fresh:
        yield fresh


def string_frame(spark: SparkSession, data: Dataset) -> DataFrame:
    schema = StructType([StructField(c, StringType()) for c in COLUMNS])
    return spark.createDataFrame([tuple(r[c] for c in COLUMNS) for r in data.rows], schema)


def dataset_frame(
    spark: SparkSession, images: int, seed: int, *by: str
) -> tuple[Dataset, DataFrame]:
    """``make_dataset(images, seed=seed)`` and its rows as a DataFrame of two partitions,
    by the columns ``by`` (round robin without)."""
    data = make_dataset(images, seed=seed)
    return data, string_frame(spark, data).repartition(2, *by)


def options_for(sb: Sandbox, **options: str) -> dict[str, str]:
    """The writer's options for ``sb``: the sandbox's token and app, quick timings."""
    return {"token": "sandbox-pat", **CREDS, **TUNING, "base": sb.base_url, **options}


def write(df: DataFrame, sb: Sandbox, fmt: str = "clarifai", **options: str) -> None:
    writer = df.write.format(fmt).mode("append")
    for key, value in options_for(sb, **options).items():
        writer = writer.option(key, value)
    writer.save()


def write_and_check(
    portal: BlockingPortal,
    df: DataFrame,
    sb: Sandbox,
    data: Dataset,
    fmt: str = "clarifai",
    **options: str,
) -> None:
    """``write``, then the sandbox holds exactly what ``data`` says (each input and box
    once)."""
    write(df, sb, fmt, **options)
    portal.call(assert_server_holds, sb, data)


def read_failures(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def failed_urls(data: Dataset) -> set[str]:
    lines = data.invalid_lines | data.broken_lines
    return {data.rows[line - 2]["url"] for line in lines}


def test_a_dataframe_lands_exactly_once(
    session: Session, portal: BlockingPortal, sb: Sandbox, tmp_path: Path
) -> None:
    data, df = dataset_frame(session.spark, 80, 5, "url")
    report, failures = tmp_path / "report.json", tmp_path / "failures.csv"
    write_and_check(
        portal, df, sb, data, tasks="2", rps="1000", report=str(report), failures=str(failures)
    )
    # the same DataFrame again: every row is found present, nothing stored twice
    write_and_check(portal, df, sb, data, tasks="2", rps="1000")
    out = json.loads(report.read_text())
    assert out["rows_read"] == len(data.rows)
    assert out["rows_failed"] == len(data.invalid_lines | data.broken_lines)
    assert out["rows_invalid"] == len(data.invalid_lines)
    assert out["annotations_created"] == len(data.boxes)
    assert out["tasks"] == 2 and out["tasks_at_once"] == 2
    assert out["rps_per_task"] == 500.0
    assert 0.0 <= out["throttled_share"] <= 1.0
    rows = read_failures(failures)
    assert list(rows[0]) == [*COLUMNS, "partition", "line", "error"]
    assert {r["url"] for r in rows} == failed_urls(data)
    assert len(rows) == out["rows_failed"]


def test_rows_of_an_image_split_across_tasks_still_land_once(
    session: Session, portal: BlockingPortal, sb: Sandbox
) -> None:
    # round robin: most images have rows in both tasks, which race to create them
    data, df = dataset_frame(session.spark, 40, 8)
    write_and_check(portal, df, sb, data, tasks="2")


def test_a_task_that_fails_once_and_is_retried_lands_exactly_once(
    session: Session, portal: BlockingPortal, sb: Sandbox, tmp_path: Path
) -> None:
    data, df = dataset_frame(session.spark, 60, 9, "url")
    flag, report = tmp_path / "failed-once", tmp_path / "report.json"
    options = {"flag_file": str(flag), "tasks": "2", "report": str(report)}
    write_and_check(portal, df, sb, data, "clarifai_flaky", **options)
    assert flag.read_text().startswith("attempt 0 failed")
    out = json.loads(report.read_text())
    # the retried attempt found what the failed one had sent
    assert out["rows_present"] > 0
    assert out["inputs_existing"] > 0
    assert out["rows_read"] == len(data.rows)  # only the successful attempts count


def test_a_failed_job_is_aborted_and_reports_what_finished(
    session: Session, portal: BlockingPortal, sb: Sandbox, tmp_path: Path
) -> None:
    data, df = dataset_frame(session.spark, 30, 4, "url")
    flag, report = tmp_path / "failed", tmp_path / "report.json"
    with pytest.raises(Exception, match="on purpose"):  # both attempts of partition 0
        write(df, sb, "clarifai_flaky", flag_file=str(flag), always="true", report=str(report))
    # what was sent stays; writing the same rows again completes the job, once
    write_and_check(portal, df, sb, data, tasks="2")
    out = json.loads(report.read_text())
    assert out["aborted"] is True
    assert out["tasks"] == 1  # partition 1 finished; partition 0 never did
    assert 0 < out["rows_read"] < len(data.rows)


def test_empty_partitions_and_frames(session: Session, portal: BlockingPortal, sb: Sandbox) -> None:
    schema = StructType([StructField(c, StringType()) for c in COLUMNS])
    one = [("https://img.example.com/1.jpg", "0.1", "0.1", "0.2", "0.2", "cat", "", "")]
    options = options_for(sb)
    job, failed = upload(session.spark.createDataFrame(one, schema), options, partitions=2)
    assert (job.tasks, job.report.rows_landed, failed.count()) == (2, 1, 0)
    job, _ = upload(session.spark.createDataFrame([], schema), options)
    assert job.report.rows_read == 0
    assert portal.call(lambda: len(sb.annotations)) == 1


def test_invalid_rows_come_back_with_their_reasons(
    session: Session, portal: BlockingPortal, sb: Sandbox, tmp_path: Path
) -> None:
    # typed columns: boxes as doubles, concepts as arrays, metadata as a map
    schema = StructType(
        [
            StructField("url", StringType()),
            *(
                StructField(c, DoubleType())
                for c in ("left_col", "top_row", "right_col", "bottom_row")
            ),
            StructField("pos_concepts", ArrayType(StringType())),
            StructField("neg_concepts", ArrayType(StringType())),
            StructField("metadata", MapType(StringType(), StringType())),
            StructField("note", StringType()),
        ]
    )
    u = "https://img.example.com"
    rows = [
        (f"{u}/1.jpg", 0.1, 0.2, 0.5, 0.6, ["cat", "pet"], ["dog"], {"split": "train"}, "a"),
        (f"{u}/1.jpg", 0.5, 0.1, 0.9, 0.6, ["dog"], None, {"split": "train"}, "b"),
        (f"{u}/2.jpg", None, None, None, None, ["outdoor"], [], None, "c"),
        (f"{u}/3.jpg", 0.6, 0.1, 0.4, 0.2, ["cat"], [], None, "right<left"),
        (f"{u}/4.jpg", 0.1, 0.1, 1.5, 0.2, ["cat"], [], None, "above 1"),
        (f"{u}/5.jpg", 0.1, 0.1, 0.2, 0.2, ["red car"], [], None, "space"),
        ("ftp://img.example.com/6.jpg", 0.1, 0.1, 0.2, 0.2, ["cat"], [], None, "ftp"),
    ]
    df = session.spark.createDataFrame(rows, schema)
    failures = str(tmp_path / "failures.csv")
    job, failed = upload(df, options_for(sb), partitions=2, failures=failures)
    stored = portal.call(lambda: {i: s.data for i, s in sb.inputs.items()})
    boxes = portal.call(lambda: len(sb.annotations))
    assert job.tasks == 2 and job.tasks_at_once == 2
    assert job.report.rows_read == len(rows)
    assert job.report.rows_landed == 3 and job.report.rows_failed == 4
    assert boxes == 2  # the two boxes of 1.jpg (2.jpg's row is image-level)
    assert {d.image.url for d in stored.values()} == {f"{u}/1.jpg", f"{u}/2.jpg"}
    meta = next(d.metadata for d in stored.values() if d.image.url.endswith("1.jpg"))
    assert MessageToDict(meta) == {"split": "train"}
    reasons = {r["note"]: r["error"] for r in failed.collect()}
    assert set(reasons) == {"right<left", "above 1", "space", "ftp"}
    assert "right_col" in reasons["above 1"] or "left_col" in reasons["above 1"]
    assert "space" in reasons["space"]
    assert "url" in reasons["ftp"]
    assert failed.columns == [
        *SEED_COLUMNS,
        "note",
        "partition",
        "line",
        "error",
    ]
    assert len(read_failures(tmp_path / "failures.csv")) == 4


def test_a_classification_frame_without_box_columns_lands(
    session: Session, portal: BlockingPortal, sb: Sandbox
) -> None:
    """No box columns: every row is image-level; a geo column lands as the input's point."""
    schema = StructType(
        [
            StructField("url", StringType()),
            StructField("pos_concepts", ArrayType(StringType())),
            StructField("metadata", MapType(StringType(), StringType())),
            StructField("geo", StringType()),
        ]
    )
    u = "https://img.example.com"
    rows = [
        (f"{u}/1.jpg", ["cat", "pet"], {"split": "train"}, "2.5,48.5"),
        (f"{u}/2.jpg", ["dog"], None, None),
        (f"{u}/1.jpg", ["outdoor"], None, None),
    ]
    df = session.spark.createDataFrame(rows, schema).repartition(2, "url")
    write(df, sb)
    stored = portal.call(
        lambda: {
            s.data.image.url: (
                sorted(c.id for c in s.data.concepts),  # (the rows' order within a task)
                MessageToDict(s.data.metadata),
                MessageToDict(s.data.geo),
            )
            for s in sb.inputs.values()
        }
    )
    assert stored == {
        f"{u}/1.jpg": (
            ["cat", "outdoor", "pet"],
            {"split": "train"},
            {"geoPoint": {"longitude": 2.5, "latitude": 48.5}},
        ),
        f"{u}/2.jpg": (["dog"], {}, {}),
    }
    assert portal.call(lambda: len(sb.annotations)) == 0


def test_no_secret_in_logs_plans_or_the_event_log(
    session: Session, portal: BlockingPortal, tmp_path: Path
) -> None:
    secret = "pat-" + os.urandom(12).hex()
    data, df = dataset_frame(session.spark, 20, 3, "url")
    sc = session.spark.sparkContext
    sc.setLogLevel("INFO")  # every plan, task and option Spark logs
    try:
        with sandbox(portal, pats=(secret,)) as sb:
            write_and_check(
                portal, df, sb, data, token=secret, report=str(tmp_path / "report.json")
            )
    finally:
        sc.setLogLevel("WARN")
    log = session.log.read_text(errors="replace")
    events = "".join(
        p.read_text(errors="replace") for p in session.events.rglob("*") if p.is_file()
    )
    # the write did run and was logged, by Spark and by the driver's commit
    assert "ingest.spark: done" in log
    assert "AppendData clarifai" in events  # the write's plan, as the UI shows it
    assert secret not in log
    assert secret not in events
    out = json.loads((tmp_path / "report.json").read_text())
    assert secret not in json.dumps(out)
    # no "tasks" option: found from the session (spark.default.parallelism = 2)
    assert out["tasks_at_once"] == 2 and out["rps_per_task"] == 7.5
