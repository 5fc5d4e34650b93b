"""``python -m benchmarks.spark``: the Spark entry on a local session against the sandbox.

Two scenarios, with the suite's server settings (:mod:`benchmarks.suite`):

* unthrottled (no limit, no latency, processing 0.05-0.2 s): the same data written by
  1 and by 2 write tasks; rows/s, the CPU of the tasks' Python workers (conversion and
  pipeline) and of the whole Spark process tree (JVM and Python workers);
* realistic (15 req/s per key, 60 ms, processing 0.5-2 s, 1 % download failures): 2
  tasks sharing ``rps=15``; rows/s as a fraction of the request-budget ceiling
  (:func:`benchmarks.audit.ceiling` of the rows that can land, as the suite computes it)
  and the share of throttled replies.

The sandbox runs in this process (in a thread), the session is ``local[2]``, and the
data is read by Spark from the CSV that ``benchmarks.datagen`` writes. Rows/s is rows
landed (counted on the server, :func:`benchmarks.suite.analyse`) over the wall time of
``df.write...save()``, which includes reading and shuffling the CSV; the session's
start is reported apart, and a small warm-up write (not counted) starts the JVM's code
paths and the Python workers first. Spark's Python workers run with the test suite's
warning filters (``PYTHONWARNINGS``, :mod:`benchmarks.strict`: every warning an error);
the session checks that they do. Every write must succeed and land each row that can
land exactly once, or the command exits 1 and says which did not. Writes ``spark.json``
and ``spark.md`` into ``--out`` (``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from benchmarks.audit import analyse, ceiling
from benchmarks.common import APP, FULL_SPEED_RPS, PAT, RESULTS, USER, provenance
from benchmarks.data import Data, good_rows, load_data
from benchmarks.render import intro, server
from benchmarks.runner import settings
from benchmarks.strict import pythonwarnings
from benchmarks.verdict import failures, finish, problems
from ingest.sandbox import Sandbox, SandboxOptions

__all__ = ["local_session", "main"]

BUDGET = 15.0
"""Requests/s of the app in the realistic scenario (Clarifai's default per key)."""
REALISTIC = SandboxOptions(
    rps=BUDGET, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01, seed=1
)
UNTHROTTLED = SandboxOptions(rps=0, latency=0.0, processing=(0.05, 0.2), seed=2)


@dataclass(frozen=True)
class Scale:
    name: str
    unthrottled_images: int
    realistic_images: int


FULL = Scale("full", unthrottled_images=33_334, realistic_images=20_000)
QUICK = Scale("quick", unthrottled_images=6_667, realistic_images=3_000)


def log(message: str) -> None:
    print(f"[bench-spark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Session:
    spark: Any
    jvm_pid: int
    started_s: float


@contextmanager
def local_session(conf: Any, jvm_log: Path) -> Iterator[tuple[Any, Any]]:
    """A session on the ``SparkConf`` ``conf`` whose JVM output (driver and executors
    alike: local mode runs both) goes to ``jvm_log``, not the terminal, with Clarifai's
    data source registered: the session and its py4j gateway (whose ``proc`` is the JVM).
    At the end the session stops and the JVM is waited for (it exits when its stdin
    closes; killed if it has not after 30 s). The tests start theirs here too."""
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    from ingest.spark import ClarifaiDataSource

    # the JVM passes its environment on to the Python workers it starts: warnings are
    # errors there too (launch_gateway copies this process's environment)
    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = pythonwarnings()
    try:
        with jvm_log.open("wb") as out:
            gateway = launch_gateway(  # type: ignore[no-untyped-call]
                conf, popen_kwargs={"stdout": out, "stderr": subprocess.STDOUT}
            )
    finally:
        if before is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = before
    sc = SparkContext(conf=conf, gateway=gateway)
    sc.setLogLevel("WARN")
    spark = SparkSession(sc)
    spark.dataSource.register(ClarifaiDataSource)
    try:
        yield spark, gateway
    finally:
        spark.stop()
        proc = getattr(gateway, "proc", None)
        gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def session(tmp: Path) -> Iterator[Session]:
    """A ``local[2]`` session whose JVM output goes to a file (not the terminal)."""
    from pyspark import SparkConf

    os.environ["PYSPARK_PYTHON"] = sys.executable
    conf = (
        SparkConf()
        .setMaster("local[2]")
        .setAppName("ingest-bench")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.ui.enabled", "false")
        .set("spark.sql.shuffle.partitions", "2")
        .set("spark.default.parallelism", "2")
    )
    t0 = time.monotonic()
    with local_session(conf, tmp / "jvm.log") as (spark, gateway):
        started = time.monotonic() - t0
        options = spark.sparkContext.parallelize([0], 1).map(lambda _: sys.warnoptions).collect()
        if options != [list(pythonwarnings().split(","))]:
            raise RuntimeError(f"Spark's Python workers run with -W {options}, not the suite's")
        yield Session(spark, gateway.proc.pid, started)


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants, with the children they reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(v) for v in fields[11:15]) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return total


@contextmanager
def sandbox(options: SandboxOptions) -> Iterator[tuple[BlockingPortal, Sandbox]]:
    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(Sandbox(options)) as sb,
    ):
        yield portal, sb


def write(
    s: Session, csv_path: Path, data: Data, options: SandboxOptions, *, tasks: int, rps: float
) -> dict[str, Any]:
    """One write of the CSV by ``tasks`` tasks; the server's and the job's figures, and
    its ``problems`` (the write failed, lost or duplicated rows)."""
    error = None
    with tempfile.TemporaryDirectory() as tmp, sandbox(options) as (portal, sb):
        report_path = Path(tmp) / "report.json"
        df = (
            s.spark.read.option("header", True)
            .option("escape", '"')  # the CSV's quotes are doubled, RFC 4180
            .csv(str(csv_path))
            .repartition(tasks, "url")
        )
        cpu0, t0 = tree_cpu(s.jvm_pid), time.monotonic()
        try:
            (
                df.write.format("clarifai")
                .mode("append")
                .option("token", PAT)
                .option("user_id", USER)
                .option("app_id", APP)
                .option("base", sb.base_url)
                .option("rps", str(rps))
                .option("tasks", str(tasks))
                .option("report", str(report_path))
                .save()
            )
        except Exception as exc:  # the job failed: say so in the results, judge the rest
            error = f"the write failed: {type(exc).__name__}: {str(exc)[:500]}"
        elapsed = time.monotonic() - t0
        cpu = tree_cpu(s.jvm_pid) - cpu0
        server = portal.call(lambda: analyse(sb, data, "url", finished=error is None))
        job = json.loads(report_path.read_text()) if report_path.exists() else {}
    landed = server["rows_landed"]
    r: dict[str, Any] = {
        "client": f"ingest.spark, {tasks} task{'s' if tasks > 1 else ''}",
        "returncode": 0,
        "expected_exit": None,
        "capped": False,
        "judged": True,
        "unplanned_death": None,
        "rows_lost": server["rows_lost"],
        "rows_duplicated": server["rows_duplicated"],
    }
    r["problems"] = ([error] if error else []) + problems(r)
    return {
        **r,
        "tasks": tasks,
        "rps": rps,
        "elapsed_s": round(elapsed, 2),
        "rows_landed": landed,
        "rows_per_s": round(landed / elapsed, 1),
        "task_cpu_s": job.get("task_cpu_s", 0.0),
        "task_cpu_s_per_100k_rows": round(job.get("task_cpu_s", 0.0) * 100_000 / max(1, landed), 2),
        "spark_cpu_s": round(cpu, 2),
        "spark_cpu_s_per_100k_rows": round(cpu * 100_000 / max(1, landed), 2),
        "requests": server["requests"],
        "throttled": server["throttled"],
        "throttled_share": round(server["throttled"] / max(1, server["requests"]), 4),
        "client_report": job,
    }


def run(scale: Scale, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"scale": scale.name}
    with session(tmp) as s:
        out["session_start_s"] = round(s.started_s, 2)
        out["worker_warnings"] = pythonwarnings()
        log(f"session local[2] started in {s.started_s:.1f} s")

        warm = load_data(tmp / "warm-up.csv", 300, seed=10)
        write(s, warm.path, warm, UNTHROTTLED, tasks=2, rps=FULL_SPEED_RPS)
        log("warm-up write done (JVM and Python workers started; not counted)")

        data = load_data(tmp / "unthrottled.csv", scale.unthrottled_images, seed=12)
        log(f"unthrottled: {data.rows} rows, {data.inputs} images")
        results = []
        for tasks in (1, 2):
            r = write(s, data.path, data, UNTHROTTLED, tasks=tasks, rps=FULL_SPEED_RPS)
            log(
                f"unthrottled, {tasks} task(s): {r['rows_per_s']} rows/s, task CPU "
                f"{r['task_cpu_s_per_100k_rows']} s / 100k rows, Spark CPU "
                f"{r['spark_cpu_s_per_100k_rows']} s / 100k rows"
                + "".join(f"; DOES NOT COUNT: {p}" for p in r["problems"])
            )
            results.append(r)
        out["unthrottled"] = {"data": data.counts, "results": results}

        data = load_data(tmp / "realistic.csv", scale.realistic_images, seed=11)
        good = good_rows(data, REALISTIC)
        limit = ceiling(data.inputs, good, BUDGET)
        log(
            f"realistic: {data.rows} rows, {data.inputs} images, "
            f"ceiling {limit.rows_per_s:.1f} rows/s"
        )
        r = write(s, data.path, data, REALISTIC, tasks=2, rps=BUDGET)
        r["ceiling_fraction"] = limit.fraction(r["rows_per_s"])
        log(
            f"realistic, 2 tasks sharing {BUDGET:g} req/s: {r['rows_per_s']} rows/s = "
            f"{r['ceiling_fraction']:.1%} of the ceiling, {r['throttled_share']:.2%} throttled"
            + "".join(f"; DOES NOT COUNT: {p}" for p in r["problems"])
        )
        out["realistic"] = {
            "options": settings(REALISTIC),
            "data": data.counts,
            "good_rows": good,
            **limit.to_dict(),
            "results": [r],
        }
    return out


def markdown(out: dict[str, Any]) -> list[str]:
    o = out["realistic"]["options"]
    lines = [
        *intro(
            out,
            f"Scale: {out['scale']}; local[2] session started in {out['session_start_s']} s "
            f"(not counted below). Realistic: {server(o)}, the budget shared by the tasks; its "
            f"ceiling counts the {out['realistic']['ceiling_rows']:,} rows that can land: "
            f"{out['realistic']['ceiling_requests']:,} requests, the fewest for this protocol.",
        ),
        "| scenario | tasks | rows landed | s | rows/s | task CPU s / 100k rows | "
        "Spark CPU s / 100k rows | requests | throttled | ceiling | rows lost | rows duplicated |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("unthrottled", "realistic"):
        for r in out[name]["results"]:
            ceiling = f"{r['ceiling_fraction']:.1%}" if "ceiling_fraction" in r else "-"
            bad = f" (**does not count: {'; '.join(r['problems'])}**)" if r["problems"] else ""
            lines.append(
                f"| {name}{bad} | {r['tasks']} | {r['rows_landed']:,} | {r['elapsed_s']} | "
                f"{r['rows_per_s']:,} | {r['task_cpu_s_per_100k_rows']} | "
                f"{r['spark_cpu_s_per_100k_rows']} | {r['requests']:,} | "
                f"{r['throttled_share']:.2%} | {ceiling} | {r['rows_lost']} | "
                f"{r['rows_duplicated']} |"
            )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data (about a minute)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--unthrottled-images", type=int, help="images of the unthrottled data")
    parser.add_argument("--realistic-images", type=int, help="images of the realistic data")
    ns = parser.parse_args(args)
    scale = QUICK if ns.quick else FULL
    if ns.unthrottled_images or ns.realistic_images:
        scale = Scale(
            "custom",
            unthrottled_images=ns.unthrottled_images or scale.unthrottled_images,
            realistic_images=ns.realistic_images or scale.realistic_images,
        )
    started = time.monotonic()
    command = shlex.join(["python", "-m", "benchmarks.spark", *args])
    out: dict[str, Any] = {"provenance": provenance(command)}
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        out.update(run(scale, Path(tmp)))
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["failures"] = failures(
        (name, r) for name in ("unthrottled", "realistic") for r in out[name]["results"]
    )
    ns.out.mkdir(parents=True, exist_ok=True)
    (ns.out / "spark.md").write_text("\n".join(markdown(out)))
    return finish(out, ns.out, "spark")


if __name__ == "__main__":
    raise SystemExit(main())
