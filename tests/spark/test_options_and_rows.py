"""The Spark entry's pieces that need no session: options, the slot rule, row conversion."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

pa = pytest.importorskip("pyarrow")
pytest.importorskip("pyspark")

from pyspark.sql import Row  # noqa: E402

from ingest import Config, ConfigError  # noqa: E402
from ingest.sandbox import Sandbox, SandboxOptions  # noqa: E402
from ingest.spark.options import SparkOptions, slots_from_conf  # noqa: E402
from ingest.spark.results import merge  # noqa: E402
from ingest.spark.rows import arrow_chunks, row_chunks  # noqa: E402
from ingest.spark.task import FailedRow, TaskResult, run_chunks  # noqa: E402
from tests.source.imagefiles import write_png  # noqa: E402


def test_options_are_typed_and_checked() -> None:
    opts = SparkOptions.parse(
        {"Token": "t0ken", "RPS": "30", "processing_timeout": "5", "tasks": "3", "report": "r"}
    )
    assert opts.settings == {"rps": 30.0, "processing_timeout": 5.0}
    assert (opts.tasks, opts.report, opts.token) == (3, "r", "t0ken")
    assert "t0ken" not in repr(opts)
    with pytest.raises(ConfigError, match="unknown option 'rsp'"):
        SparkOptions.parse({"rsp": "3"})
    with pytest.raises(ConfigError, match="must be a number"):
        SparkOptions.parse({"rps": "fast"})
    with pytest.raises(ConfigError, match="rps must be positive"):
        SparkOptions.parse({"rps": "0"})


@pytest.mark.parametrize("name", ["pat", "api_key", "PAT"])
def test_a_secret_only_travels_as_token(name: str) -> None:
    # Spark redacts option values by name (spark.redaction.regex matches "token")
    with pytest.raises(ConfigError, match="option 'token'"):
        SparkOptions.parse({name: "x"})


def test_the_budget_is_split_and_credentials_come_from_the_executor() -> None:
    opts = SparkOptions.parse({"rps": "15", "app_id": "app"})
    env = {"CLARIFAI_PAT": "from-env", "CLARIFAI_USER_ID": "me"}
    config = opts.config(3, env)
    assert config.rps == 5.0
    assert (config.pat, config.user_id, config.app_id) == ("from-env", "me", "app")
    # a token with user and app ids is a personal access token, alone an app key
    assert SparkOptions.parse({"token": "k"}).config(1, {}).api_key == "k"
    assert SparkOptions.parse({"token": "p", "user_id": "u", "app_id": "a"}).config(1, {}).pat
    with pytest.raises(ConfigError, match="no credential"):
        opts.config(1, {})


def test_slots_follow_the_documented_rule() -> None:
    def conf(**values: str):  # type: ignore[no-untyped-def]
        return lambda key: values.get(key.replace(".", "_"))

    assert slots_from_conf(conf(spark_default_parallelism="12", spark_master="local[2]")) == 12
    assert slots_from_conf(conf(spark_master="local[3]")) == 3
    assert slots_from_conf(conf(spark_master="local[2,2]")) == 2
    assert slots_from_conf(conf(spark_master="local[*]"), cpu_count=8) == 8
    assert (
        slots_from_conf(
            conf(
                spark_master="yarn",
                spark_executor_instances="4",
                spark_executor_cores="4",
                spark_task_cpus="2",
            )
        )
        == 8
    )
    assert slots_from_conf(conf(spark_master="spark://host:7077")) is None


def test_arrow_batches_and_rows_become_the_same_text() -> None:
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "URL": "https://x/1.jpg",
                "left_col": 0.1,
                "top_row": None,
                "right_col": 0.5,
                "bottom_row": 1,
                "pos_concepts": ["cat", "pet"],
                "neg_concepts": None,
                "metadata": {"split": "train", "n": 3},
                "extra": 7,
            }
        ],
        schema=pa.schema(
            [
                ("URL", pa.string()),
                ("left_col", pa.float32()),
                ("top_row", pa.float64()),
                ("right_col", pa.float64()),
                ("bottom_row", pa.int64()),
                ("pos_concepts", pa.list_(pa.string())),
                ("neg_concepts", pa.list_(pa.string())),
                ("metadata", pa.struct([("split", pa.string()), ("n", pa.int64())])),
                ("extra", pa.int32()),
            ]
        ),
    )
    (rows,) = arrow_chunks([batch])
    expected = {
        "url": "https://x/1.jpg",
        "left_col": "0.1",  # float32: the shortest text, not 0.10000000149011612
        "top_row": "",
        "right_col": "0.5",
        "bottom_row": "1",
        "pos_concepts": "cat|pet",
        "neg_concepts": "",
        "metadata": '{"split": "train", "n": 3}',
        "extra": "7",
    }
    assert rows == [expected]
    row = Row(
        URL="https://x/1.jpg",
        left_col=0.1,
        top_row=None,
        right_col=0.5,
        bottom_row=1,
        pos_concepts=["cat", "pet"],
        neg_concepts=None,
        metadata=Row(split="train", n=3),
        extra=7,
    )
    (rows,) = row_chunks([row])
    assert rows == [expected]
    (rows,) = row_chunks([Row(url="u", metadata={"a": {"b": 1}}, pos_concepts="a|b")])
    assert json.loads(rows[0]["metadata"]) == {"a": {"b": 1}}
    assert rows[0]["pos_concepts"] == "a|b"


def test_a_map_column_becomes_a_json_object() -> None:
    batch = pa.RecordBatch.from_pylist(
        [{"metadata": [("k", "v")]}, {"metadata": None}],
        schema=pa.schema([("metadata", pa.map_(pa.string(), pa.string()))]),
    )
    (rows,) = arrow_chunks([batch])
    assert rows == [{"metadata": '{"k": "v"}'}, {"metadata": ""}]


def test_task_results_pickle_and_merge() -> None:
    failed = FailedRow(1, 4, "line 5, column 'url': empty", {"url": ""})
    results = [
        TaskResult(0, 0, 2, 7.5, {"rows_read": 3, "requests": 4, "throttled": 1}),
        None,  # a task that did not finish
        TaskResult(
            1,
            1,
            2,
            7.5,
            {"rows_read": 2, "requests": 4, "requests_by_method": {"PostInputs": 1}},
            (failed,),
        ),
    ]
    results = [pickle.loads(pickle.dumps(r)) for r in results]
    job = merge(results, rps=15, elapsed_s=2.0)
    assert (job.tasks, job.tasks_at_once) == (2, 2)
    assert job.report.rows_read == 5
    assert job.throttled_share == 1 / 8
    assert job.failures == [failed]
    out = job.to_dict()
    assert out["rps_per_task"] == 7.5 and out["requests_by_method"] == {"PostInputs": 1}


def test_a_config_gives_its_credentials_and_options() -> None:
    config = Config(pat="p", user_id="u", app_id="a", rps=10, call_timeout=3)
    opts = SparkOptions.from_config(config, tasks=4, report="r.json")
    assert "'p'" not in repr(opts)
    got = opts.config(opts.tasks or 1, {"CLARIFAI_PAT": "other"})
    assert (got.pat, got.user_id, got.app_id) == ("p", "u", "a")
    assert (got.rps, got.call_timeout, opts.report) == (2.5, 3.0, "r.json")


def test_file_rows_are_read_from_base_dir(tmp_path: Path) -> None:
    """A task's ``file`` cells are relative to ``base_dir``, as a CSV's are to its folder,
    and a failed row keeps the path as the table gave it."""
    write_png(tmp_path / "images" / "cat.png", 8, 8)
    boxless = dict.fromkeys(("left_col", "top_row", "right_col", "bottom_row"), "")
    rows = [
        {"file": "cat.png", **boxless, "pos_concepts": "cat"},
        {"file": "nowhere.png", **boxless, "pos_concepts": "dog"},
    ]
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(
            Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01)))
        ) as sb,
    ):
        options = SparkOptions.parse(
            {
                "token": "sandbox-pat",
                "user_id": sb.options.user_id,
                "app_id": sb.options.app_id,
                "base": sb.base_url,
                "base_dir": str(tmp_path / "images"),
                "tasks": "1",
                "linger": "0.05",
                "processing_estimate": "0.1",
            }
        )
        result = run_chunks(iter([rows]), options)
        stored = [inp.data.image for inp in sb.inputs.values()]
    assert (result.report["rows_landed"], result.report["rows_failed"]) == (1, 1)
    assert len(stored) == 1 and stored[0].base64.startswith(b"\x89PNG")
    (failed,) = result.failures
    assert failed.cells["file"] == "nowhere.png"
    assert failed.error == "line 3, column 'file': file 'nowhere.png' does not exist"
