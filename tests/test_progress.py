"""Progress reporting: plain lines, events and notices, the live display, the polling task.

What the display promises (``ingest/cli/progress.py``): totals from the counting pass
from the first frame with bars, unmoved; a resumed run counting only what it has to
send; an interrupted run saying so and where it stopped; failure notices on one line,
rate-limited, naming the line once and the image; request rates only over a window
long enough to mean something.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import anyio
import pytest
from rich.console import Console

from ingest.cli.progress import (
    RATE_WINDOW,
    Event,
    EventDetector,
    LiveReporter,
    PlainReporter,
    Reporter,
    RequestRate,
    Snapshot,
    describe_failure,
    fit,
    reporter_for,
    snapshot,
    watch,
)
from ingest.report import Report


def snap(**kw: object) -> Snapshot:
    base: dict[str, object] = {"total_rows": 1000, "rate": 15.0, "target": 15.0}
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def live(width: int = 120) -> tuple[LiveReporter, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=width, color_system=None)
    return LiveReporter(console), buf


def last_frame(reporter: LiveReporter) -> str:
    """The display as it stands: bars and status line, as plain text."""
    console = Console(file=io.StringIO(), width=reporter.console.width, color_system=None)
    with console.capture() as capture:
        for renderable in reporter.bars.get_renderables():
            console.print(renderable)
    return capture.get()


def bar(reporter: LiveReporter, label: str) -> str:
    [line] = [x for x in last_frame(reporter).splitlines() if x.startswith(label)]
    return line


def count(reporter: LiveReporter, label: str) -> str:
    """What a bar counts: ``done/total``, or ``done`` without a total."""
    return next(t for t in bar(reporter, label).split() if re.fullmatch(r"[\d,]+(/[\d,]+)?", t))


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
    assert line.startswith("[   0:05] rows read 400/1,000, done 307/1,000 (landed 300")
    for part in (
        "failed 7 (2 invalid)",
        "inputs created 120, processed 100",
        "annotations 250",
        "retries 3",
        "throttled 1",
        "60 requests",  # five seconds: no rate yet
    ):
        assert part in line, part
    assert "req/s" not in line
    r.log("throttling: something")
    r.stop(snap(elapsed=7.0))
    lines = out.getvalue().splitlines()
    assert lines[1] == "throttling: something"
    assert lines[2].startswith("[   0:07] rows read 0/1,000")


def test_a_request_rate_is_shown_over_a_full_window_only() -> None:
    """A 2-second run measures the server's full bucket, not the pace: no rate then."""
    rate = RequestRate(window=10.0)
    assert rate.feed(snap(elapsed=0.0, requests=0)) is None
    assert rate.feed(snap(elapsed=2.0, requests=53)) is None  # 26.5/s over 2 s: not shown
    assert rate.feed(snap(elapsed=9.9, requests=160)) is None
    assert rate.feed(snap(elapsed=10.0, requests=165)) == pytest.approx(16.5)
    # later, only the last ten seconds count
    for t in range(11, 31):
        got = rate.feed(snap(elapsed=float(t), requests=165 + 15 * (t - 10)))
    assert got == pytest.approx(15.0)

    out = io.StringIO()
    plain = PlainReporter(out, every=1.0)
    plain.start(snap(elapsed=0.0))
    for t in range(1, 13):
        plain.update(snap(elapsed=float(t), requests=12 * t, rate=10.5))
    lines = out.getvalue().splitlines()
    assert "req/s" not in lines[0] and "12 requests" in lines[0]
    assert lines[-1].endswith("12.0/15 req/s (paced at 10.5)")
    assert RATE_WINDOW >= 10


def test_events_throttling_start_and_end() -> None:
    d = EventDetector(window=5.0)
    assert d.feed(snap(elapsed=0.0)) == []
    events = d.feed(snap(elapsed=0.2, throttled=2, rate=10.0))
    assert len(events) == 1 and events[0].text.startswith("throttling: the server refused 2")
    assert "10.0 requests/s" in events[0].text
    assert d.feed(snap(elapsed=0.4, throttled=3, rate=8.0)) == []  # once per episode
    assert d.feed(snap(elapsed=0.6, throttled=3, rate=12.0)) == []
    assert d.feed(snap(elapsed=0.8, throttled=3, rate=15.0)) == [
        Event("throttling over: back to 15 requests/s")
    ]


def test_a_retry_storm_is_told_once_per_window() -> None:
    d = EventDetector(window=5.0, retry_storm=20)
    d.feed(snap(elapsed=0.0))
    [event] = d.feed(snap(elapsed=1.0, retries=25))
    assert event.text.startswith("retry storm: 25 calls retried")
    assert d.feed(snap(elapsed=2.0, retries=60)) == []  # not again so soon
    assert len(d.feed(snap(elapsed=8.0, retries=120))) == 1


def test_failure_notices_the_first_at_once_then_one_per_period() -> None:
    d = EventDetector(failures_every=30.0)
    d.feed(snap(elapsed=0.0))
    first = "line 99, column 'bottom_row': not a number: 'abc'"
    [event] = d.feed(snap(elapsed=1.5, rows_failed=1, rows_invalid=1, last_failure=first))
    assert event.text == f"1 row failed in 2 s; latest {first}"
    url = "https://images.example.com/broken/img_000123.jpg"
    later = describe_failure(120, f"download failed: could not download {url}", url)
    quiet = [
        d.feed(snap(elapsed=t, rows_failed=1 + int(t), last_failure=later, last_image=url))
        for t in (2.0, 10.0, 20.0, 31.0)
    ]
    assert quiet == [[], [], [], []]  # 30 s after the first one
    [event] = d.feed(snap(elapsed=32.0, rows_failed=40, last_failure=later, last_image=url))
    assert event == Event(f"39 rows failed in 30 s; latest {later}", url)
    assert d.feed(snap(elapsed=33.0, rows_failed=41)) == []


def test_a_failure_names_its_line_once_and_its_image() -> None:
    invalid = "line 37397, column 'metadata': not a JSON object"
    assert describe_failure(37397, invalid, "https://e.com/a.jpg") == (
        f"{invalid} (https://e.com/a.jpg)"
    )
    url = "https://e.com/photos/2024/img_1.jpg"
    failed = describe_failure(12, f"download failed: could not download\n{url}", url)
    assert failed == f"line 12: download failed: could not download {url}"  # one line
    assert describe_failure(373, "line 3731, column 'url': empty") == (
        "line 373: line 3731, column 'url': empty"  # another line's number is no repeat
    )


def test_fit_cuts_in_the_middle_and_keeps_what_names_the_image() -> None:
    url = "https://storage.example.com/datasets/traffic/2024/batch-0007/images/img_0037397.jpg"
    text = (
        f"212 rows failed in 30 s; latest line 37397: download failed: "
        f"INPUT_DOWNLOAD_FAILED (30002): Input download failed: could not download {url}"
    )
    for width in (60, 80, 100):
        line = fit(text, width, url)
        assert len(line) <= width and "\n" not in line
        assert line.startswith("212 rows failed in 30 s; latest line 37397")
        assert line.endswith("/img_0037397.jpg")  # the image's name survives
        if width >= 80:
            assert " https://storage…/img_0037397.jpg" in line  # cut in its middle
    assert fit(text, 500, url) == text
    path = "/data/very/long/folder/name/that/goes/on/and/on/images/cat_0001.png"
    line = fit(f"line 5: cannot read {path}: No such file or directory", 60, path)
    assert len(line) <= 60 and "cat_0001.png" in line and line.startswith("line 5")
    assert fit("a\nb  c", 10) == "a b c"


def test_a_live_notice_is_one_line_cut_in_the_middle() -> None:
    r, buf = live(width=80)
    url = "https://images.example.com/some/long/path/of/folders/broken/img_0037397.jpg"
    failure = describe_failure(37397, f"download failed: could not download {url}", url)
    d = EventDetector()
    d.feed(snap(elapsed=0.0))
    [event] = d.feed(snap(elapsed=1.0, rows_failed=3, last_failure=failure, last_image=url))
    r.log(event.text, image=event.image, one_line=True)
    [line] = buf.getvalue().splitlines()
    assert len(line) <= 80
    assert line.startswith("3 rows failed in 1 s; latest line 37397: ")
    assert line.count("37397") == 2  # the line once, and the image's own name
    assert line.endswith("img_0037397.jpg") and "…" in line
    r.log("Ctrl-C: stopping; what landed is in the journal and the same command continues.")
    assert "the same command continues." in buf.getvalue()  # an ordinary message is whole


@dataclass(slots=True)
class Counted(Report):
    """A report whose counting pass also counted the images."""

    images_total: int = 0


def test_totals_come_from_the_counting_pass_from_the_first_frame_and_stay() -> None:
    report = Counted(phase="scanning")
    r, _ = live()
    r.start(snapshot(report))
    frame = last_frame(r)
    assert "counting the rows" in frame and "rows read" not in frame  # no bar without totals
    report.phase, report.rows_total, report.images_total = "", 30_000, 10_000
    r.update(snapshot(report))
    assert count(r, "rows read") == count(r, "rows done") == "0/30,000"
    assert count(r, "inputs created") == count(r, "inputs processed") == "0/10,000"
    for step in range(1, 6):
        report.rows_read, report.rows_landed = 6_000 * step, 5_000 * step
        report.inputs_created, report.inputs_processed = 1_900 * step, 1_800 * step
        report.inputs_failed = 10 * step
        report.annotations_created = 4_000 * step
        r.update(snapshot(report))
        assert count(r, "rows read") == f"{6_000 * step:,}/30,000"
        assert count(r, "rows done") == f"{5_000 * step:,}/30,000"
        assert count(r, "inputs created") == f"{1_900 * step:,}/10,000"
        assert count(r, "inputs processed") == f"{1_810 * step:,}/10,000"
        assert count(r, "annotations posted") == f"{4_000 * step:,}"  # boxes are not counted
    report.rows_landed, report.rows_failed = 29_990, 10
    report.inputs_created = report.inputs_processed = 10_000
    r.stop(snapshot(report))
    assert count(r, "rows done") == "30,000/30,000"
    assert count(r, "annotations posted") == "20,000/20,000"
    assert "eta" not in last_frame(r)


def test_a_resumed_run_counts_only_what_it_has_to_send() -> None:
    """The rows done earlier are skipped as the reader meets them; the totals are the
    file's rows less the journal's from the start, and those rows are shown apart."""
    report = Counted(rows_total=10_000, images_total=4_000)
    r, _ = live(width=140)
    r.start(snapshot(report, resumed=6_000))
    seen = set()
    for read in range(0, 10_001, 2_000):
        report.rows_read = read
        report.rows_resumed = min(read, 6_000) if read else 0
        report.rows_landed = max(read - 6_000, 0) // 2
        r.update(snapshot(report, resumed=6_000))
        seen.add(count(r, "rows done").split("/")[1])
        assert count(r, "rows read") == f"{max(read - 6_000, 0):,}/4,000"
    assert seen == {"4,000"}  # one total, from the first frame
    assert "6,000 done earlier" in last_frame(r)
    assert "/" not in count(r, "inputs created")  # how many images are left is unknown
    out = io.StringIO()
    plain = PlainReporter(out)
    plain.stop(snapshot(report, resumed=6_000))
    assert "rows read 4,000/4,000, done 2,000/4,000" in out.getvalue()
    assert "6,000 done earlier" in out.getvalue()


def test_an_interrupted_run_says_so_and_where_it_stopped() -> None:
    report = Counted(rows_total=29_909, images_total=10_000, rows_read=29_909)
    report.rows_landed, report.rows_failed = 5_376, 241
    report.inputs_created, report.inputs_processed, report.annotations_created = 7_040, 3_200, 5_376
    r, _ = live(width=120)
    r.start(snapshot(report))
    r.update(snapshot(report))
    r.stop(snapshot(report, interrupted=True))
    frame = last_frame(r)
    assert "interrupted at 0:00 with 5,617 of 29,909 rows done; the same command continues" in (
        frame
    )
    assert count(r, "rows done") == "5,617/29,909"
    assert count(r, "inputs created") == "7,040/10,000"
    assert count(r, "inputs processed") == "3,200/10,000"
    assert count(r, "annotations posted") == "5,376"  # no made-up total
    assert "eta" not in frame and "100%" not in frame and "/s" not in frame

    out = io.StringIO()
    PlainReporter(out).stop(snapshot(report, interrupted=True))
    assert out.getvalue().splitlines()[-1].startswith("interrupted at 0:00 with 5,617 of 29,909")


def test_snapshot_reads_the_live_report() -> None:
    report = Report(rows_read=5, rows_landed=3, inputs_created=2, inputs_existing=1)

    class Stats:
        requests, throttled, retries = 9, 1, 2

    class Limiter:
        rate, target = 12.0, 15.0

    class Client:
        stats, limiter = Stats(), Limiter()

    report.rows_total = 10
    s = snapshot(report, Client(), resumed=4)
    assert (s.rows_read, s.rows_landed, s.inputs) == (5, 3, 3)
    assert (s.requests, s.throttled, s.retries, s.rate, s.target) == (9, 1, 2, 12.0, 15.0)
    assert (s.total_rows, s.rows_to_send, s.total_images) == (10, 6, None)
    assert snapshot(report).target == 0.0


def test_live_reporter_renders_bars_and_status() -> None:
    r, buf = live(width=140)
    r.start(snap(elapsed=0.0))
    r.log("resuming: 10 rows already done")
    r.update(snap(elapsed=1.0, rows_read=500, inputs_created=80, rows_failed=2))
    text = buf.getvalue() + last_frame(r)
    for label in ("rows read", "inputs created", "inputs processed", "annotations posted"):
        assert label in text
    assert "resuming: 10 rows already done" in text
    assert "failed 2" in text


@pytest.mark.anyio
async def test_watch_polls_until_cancelled() -> None:
    seen: list[Snapshot] = []
    logs: list[tuple[str, bool]] = []

    class Recorder(Reporter):
        interval = 0.01

        def update(self, s: Snapshot) -> None:
            seen.append(s)

        def log(
            self, message: str, *, style: str = "", image: str = "", one_line: bool = False
        ) -> None:
            logs.append((message, one_line))

    n = 0

    def probe() -> Snapshot:
        nonlocal n
        n += 1
        return snap(elapsed=n * 0.01, throttled=1 if n > 3 else 0, rate=7.0)

    with anyio.fail_after(5), anyio.move_on_after(0.2):
        await watch(Recorder(), probe)
    assert len(seen) > 5
    assert len(logs) == 1 and logs[0][0].startswith("throttling") and logs[0][1]


def test_auto_is_live_on_a_terminal_and_plain_lines_elsewhere() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    piped = Console(file=io.StringIO(), force_terminal=False)
    assert type(reporter_for("auto", terminal)) is LiveReporter
    assert type(reporter_for("auto", piped)) is PlainReporter
    assert type(reporter_for("none", terminal)) is Reporter
