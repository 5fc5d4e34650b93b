"""Progress reporting: plain lines, events, the live display, the polling task."""

from __future__ import annotations

import io

import anyio
import pytest
from rich.console import Console

from ingest.cli.progress import (
    EventDetector,
    LiveReporter,
    PlainReporter,
    Reporter,
    Snapshot,
    reporter_for,
    snapshot,
    watch,
)
from ingest.report import Report


def snap(**kw: object) -> Snapshot:
    base: dict[str, object] = {"total_rows": 1000, "rate": 15.0, "target": 15.0}
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_plain_reporter_writes_a_line_every_few_seconds() -> None:
    out = io.StringIO()
    r = PlainReporter(out, every=5.0)
    r.start(snap(elapsed=0.0))
    for t in (0.5, 1.0, 4.9):
        r.update(snap(elapsed=t))
    assert out.getvalue() == ""
    r.update(
        snap(
            elapsed=5.1,
            rows_read=400,
            rows_landed=300,
            rows_failed=7,
            rows_invalid=2,
            inputs_created=120,
            inputs_processed=100,
            annotations_created=250,
            requests=60,
            retries=3,
            throttled=1,
        )
    )
    r.update(snap(elapsed=6.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("[   0:05] rows read 400/1000, done 307/1000 (landed 300")
    for part in (
        "failed 7 (2 invalid)",
        "inputs created 120, processed 100",
        "annotations 250",
        "retries 3",
        "throttled 1",
        "11.8/15 req/s",
    ):
        assert part in line, part
    r.log("throttling: something")
    r.stop(snap(elapsed=7.0))
    lines = out.getvalue().splitlines()
    assert lines[1] == "throttling: something"
    assert lines[2].startswith("[   0:07] rows read 0/1000")


def test_plain_line_shows_a_lowered_pace() -> None:
    out = io.StringIO()
    r = PlainReporter(out, every=1.0)
    r.start(snap(elapsed=0.0))
    r.update(snap(elapsed=2.0, requests=20, rate=10.5))
    assert "10.0/15 req/s (paced at 10.5)" in out.getvalue()


def test_events_throttling_start_and_end() -> None:
    d = EventDetector(window=5.0)
    assert d.feed(snap(elapsed=0.0)) == []
    events = d.feed(snap(elapsed=0.2, throttled=2, rate=10.0))
    assert len(events) == 1 and events[0].startswith("throttling: the server refused 2")
    assert "10.0 requests/s" in events[0]
    assert d.feed(snap(elapsed=0.4, throttled=3, rate=8.0)) == []  # once per episode
    assert d.feed(snap(elapsed=0.6, throttled=3, rate=12.0)) == []
    assert d.feed(snap(elapsed=0.8, throttled=3, rate=15.0)) == [
        "throttling over: back to 15 requests/s"
    ]


def test_events_retry_storm_and_failure_burst_are_rate_limited() -> None:
    d = EventDetector(window=5.0, retry_storm=20, failure_burst=10)
    d.feed(snap(elapsed=0.0))
    events = d.feed(snap(elapsed=1.0, retries=25, rows_failed=12, last_error="line 9: 404"))
    assert any(e.startswith("retry storm: 25 calls retried") for e in events)
    assert any(e.startswith("12 rows failed") and "line 9: 404" in e for e in events)
    assert d.feed(snap(elapsed=2.0, retries=60, rows_failed=40)) == []  # not again so soon
    later = d.feed(snap(elapsed=8.0, retries=120, rows_failed=80))
    assert len(later) == 2


def test_estimates() -> None:
    s = snap(rows_read=200, rows_landed=100, box_fraction=0.8)
    assert s.rows_to_send == 1000 and s.annotations_estimate == 800
    resumed = snap(rows_read=600, rows_resumed=500)
    assert resumed.rows_to_send == 500
    assert snap(rows_landed=10, box_fraction=0.5).annotations_estimate is None  # too early
    assert Snapshot().rows_to_send is None


def test_snapshot_reads_the_live_report() -> None:
    report = Report(rows_read=5, rows_landed=3, inputs_created=2, inputs_existing=1)

    class Stats:
        requests, throttled, retries = 9, 1, 2

    class Limiter:
        rate, target = 12.0, 15.0

    class Client:
        stats, limiter = Stats(), Limiter()

    s = snapshot(report, Client(), total_rows=10)
    assert (s.rows_read, s.rows_landed, s.inputs) == (5, 3, 3)
    assert (s.requests, s.throttled, s.retries, s.rate, s.target) == (9, 1, 2, 12.0, 15.0)
    assert snapshot(report).target == 0.0


def test_live_reporter_renders_bars_and_status() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140, color_system=None)
    r = LiveReporter(console)
    r.start(snap(elapsed=0.0))
    r.log("resuming: 10 rows already done")
    r.update(snap(elapsed=1.0, rows_read=500, images=100, inputs_created=80, rows_failed=2))
    r.stop(snap(elapsed=2.0, rows_read=1000, images=200, inputs_created=200, rows_landed=990))
    text = buf.getvalue()
    for label in ("rows read", "inputs created", "inputs processed", "annotations posted"):
        assert label in text
    assert "resuming: 10 rows already done" in text
    assert "1000/1000" in text and "200/200" in text  # at the end every bar is full
    assert "/15 req/s" in text


def test_live_annotation_bar_keeps_its_rate_while_the_estimate_drifts() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=140, color_system=None)
    r = LiveReporter(console)
    r.start(snap(elapsed=0.0, total_rows=10_000))
    for i in range(1, 30):
        # the box share of finished rows wobbles a little from one poll to the next
        fraction = 0.9 + 0.005 * (i % 3)
        r.update(
            snap(
                elapsed=i * 0.2,
                total_rows=10_000,
                rows_read=10_000,
                rows_landed=200 * i,
                annotations_created=180 * i,
                box_fraction=fraction,
            )
        )
    [bar] = [t for t in r.bars.tasks if t.description == "annotations posted"]
    assert bar.total is not None and abs(bar.total - 9_000) <= 0.02 * 9_000
    assert bar.speed is not None and bar.time_remaining is not None


@pytest.mark.anyio
async def test_watch_polls_until_cancelled() -> None:
    seen: list[Snapshot] = []
    logs: list[str] = []

    class Recorder(Reporter):
        interval = 0.01

        def update(self, s: Snapshot) -> None:
            seen.append(s)

        def log(self, message: str, *, style: str = "") -> None:
            logs.append(message)

    n = 0

    def probe() -> Snapshot:
        nonlocal n
        n += 1
        return snap(elapsed=n * 0.01, throttled=1 if n > 3 else 0, rate=7.0)

    with anyio.fail_after(5), anyio.move_on_after(0.2):
        await watch(Recorder(), probe)
    assert len(seen) > 5
    assert len(logs) == 1 and logs[0].startswith("throttling")


def test_auto_is_live_on_a_terminal_and_plain_lines_elsewhere() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    piped = Console(file=io.StringIO(), force_terminal=False)
    assert type(reporter_for("auto", terminal)) is LiveReporter
    assert type(reporter_for("auto", piped)) is PlainReporter
    assert type(reporter_for("none", terminal)) is Reporter
