"""Showing a run while it goes: a live display, plain lines, or nothing.

Nothing here sits in the data path. A polling task (:func:`watch`) reads the live
counters (``Ingester.report``, ``client.stats``, ``client.limiter``) a few times a
second into a :class:`Snapshot`, spots notable events (throttling, a retry storm,
a burst of failures) and hands both to a reporter:

* :class:`LiveReporter`: a rich display on stderr, one bar per stage (rows read,
  inputs created, inputs processed, annotations posted, rows done) with rate and
  time remaining, a status line (failures, retries, throttled, request rate against
  the budget) and log lines above the bars for events;
* :class:`PlainReporter`: one line every few seconds, and one per event (for logs
  and CI, when stderr is not a terminal);
* :class:`Reporter`: the silent base, for library use.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TextIO

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from ingest.report import Report

__all__ = [
    "EventDetector",
    "LiveReporter",
    "PlainReporter",
    "Reporter",
    "Snapshot",
    "reporter_for",
    "snapshot",
    "watch",
]


@dataclass(slots=True)
class Snapshot(Report):
    """A copy of the run's report at one moment, with what only the display needs.

    ``requests``, ``throttled`` and ``retries`` are the client's live counts when a
    client is given (the report takes them at the end).
    """

    elapsed: float = 0.0
    total_rows: int | None = None
    """Rows in the file (a quick estimate), or None when unknown."""
    box_fraction: float | None = None
    """Share of finished rows that carry a box (for the annotations estimate)."""
    rate: float = 0.0
    """Current request pace of the client-side limiter."""
    target: float = 0.0
    """The request budget (``--rps``)."""
    last_error: str = ""

    @property
    def inputs(self) -> int:
        """Inputs the app holds from this run: created, or there already."""
        return self.inputs_created + self.inputs_existing

    @property
    def annotations(self) -> int:
        """Annotations the app holds from this run: created, or there already."""
        return self.annotations_created + self.annotations_existing

    @property
    def rows_finished(self) -> int:
        """Rows with an outcome this run: ``rows_done`` without the resumed ones."""
        return self.rows_done - self.rows_resumed

    @property
    def rows_to_send(self) -> int | None:
        """Rows this run has to finish (total minus those done earlier), if known."""
        if self.total_rows is None:
            return None
        return max(self.rows_finished, self.total_rows - self.rows_resumed)

    @property
    def annotations_estimate(self) -> int | None:
        todo = self.rows_to_send
        if todo is None or self.box_fraction is None or self.rows_finished < 20:
            return None
        return max(self.annotations, round(self.box_fraction * (todo - self.rows_invalid)))


def snapshot(
    report: Report,
    client: Any = None,
    *,
    total_rows: int | None = None,
    box_fraction: float | None = None,
    last_error: str = "",
) -> Snapshot:
    """Copy ``report`` and read the client's live stats."""
    snap = Snapshot(**{f.name: getattr(report, f.name) for f in fields(Report)})
    snap.elapsed = time.monotonic() - report.started
    snap.total_rows = total_rows if total_rows is not None else report.rows_total or None
    snap.box_fraction = box_fraction
    snap.last_error = last_error
    stats = getattr(client, "stats", None)
    if stats is not None:
        snap.requests, snap.throttled, snap.retries = stats.requests, stats.throttled, stats.retries
    limiter = getattr(client, "limiter", None)
    if limiter is not None:
        snap.rate, snap.target = limiter.rate, limiter.target
    return snap


class EventDetector:
    """Turns successive snapshots into notable events worth a log line.

    Throttling (started, and over once the limiter is back at its budget), a retry
    storm (many retries within ``window`` seconds) and a burst of failures (many rows
    failing within ``window`` seconds), each reported at most once per ``window``;
    the grouping of a file whose rows of one image are scattered (started, and done
    with what it cost).
    """

    def __init__(self, *, window: float = 5.0, retry_storm: int = 20, failure_burst: int = 20):
        self.window = window
        self.retry_storm = retry_storm
        self.failure_burst = failure_burst
        self._prev: Snapshot | None = None
        self._marks: list[Snapshot] = []
        self._throttling = False
        self._last: dict[str, float] = {}

    def _may_speak(self, kind: str, now: float) -> bool:
        """True (and noted) when no event of ``kind`` was reported in the last window."""
        if now - self._last.get(kind, -1e9) < self.window:
            return False
        self._last[kind] = now
        return True

    def feed(self, snap: Snapshot) -> list[str]:
        events: list[str] = []
        prev, self._prev = self._prev, snap
        if prev is None:
            self._marks = [snap]
            return events
        now = snap.elapsed
        # a window of past snapshots for rates over the last few seconds
        self._marks.append(snap)
        while len(self._marks) > 2 and now - self._marks[1].elapsed >= self.window:
            self._marks.pop(0)
        base = self._marks[0]

        if snap.phase == "grouping" and prev.phase != "grouping":
            total = f" ({snap.total_rows:,} rows)" if snap.total_rows else ""
            events.append(
                "the rows of some images are scattered through the file: grouping them "
                f"by image on disk first{total}"
            )
        elif snap.grouped and not prev.grouped:
            events.append(
                f"grouped by image in {snap.grouping_s:.1f} s "
                f"({snap.grouping_temp_bytes / 1e6:,.1f} MB of temp files, removed at the end)"
            )

        if snap.throttled > prev.throttled:
            if not self._throttling:
                self._throttling = True
                events.append(
                    f"throttling: the server refused {snap.throttled - prev.throttled} "
                    f"request(s) for rate; pacing down to {snap.rate:.1f} requests/s "
                    f"(budget {snap.target:g})"
                )
        elif self._throttling and snap.target and snap.rate >= snap.target * 0.999:
            self._throttling = False
            events.append(f"throttling over: back to {snap.target:g} requests/s")

        retries = snap.retries - base.retries
        if retries >= self.retry_storm and self._may_speak("retry", now):
            events.append(
                f"retry storm: {retries} calls retried in the last {now - base.elapsed:.0f} s"
            )

        failed = snap.rows_failed - base.rows_failed
        if failed >= self.failure_burst and self._may_speak("fail", now):
            error = snap.last_error
            if len(error) > 120:
                error = error[:119] + "…"
            last = f" (latest: {error})" if error else ""
            events.append(
                f"{failed} rows failed in the last {now - base.elapsed:.0f} s; "
                f"they go to the failures file{last}"
            )
        return events


class Reporter:
    """Shows nothing: the reporter for library use. Subclasses show the run."""

    interval = 0.25
    """Seconds between polls."""

    def start(self, snap: Snapshot) -> None:
        """The run begins."""

    def update(self, snap: Snapshot) -> None:
        """New counters (called every :attr:`interval` seconds)."""

    def log(self, message: str, *, style: str = "") -> None:
        """A notable event."""

    def stop(self, snap: Snapshot) -> None:
        """The run ended (or was interrupted); leave the screen tidy."""


def _status_text(s: Snapshot) -> str:
    parts = [
        f"failed {s.rows_failed}" + (f" ({s.rows_invalid} invalid)" if s.rows_invalid else ""),
        f"retries {s.retries}",
        f"throttled {s.throttled}",
    ]
    if s.target:
        pace = "" if s.rate >= s.target else f" (paced at {s.rate:.1f})"
        parts.append(
            f"{s.requests / s.elapsed if s.elapsed > 0 else 0:.1f}/{s.target:g} req/s{pace}"
        )
    return " · ".join(parts)


class _RateColumn(ProgressColumn):
    """Items per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("    -/s", style="progress.data.speed")
        return Text(f"{speed:7.1f}/s", style="progress.data.speed")


class _Bars(Progress):
    """rich Progress with a status line under the bars."""

    status: Text = Text("")

    def get_renderables(self) -> Any:
        yield self.make_tasks_table(self.tasks)
        yield self.status


class LiveReporter(Reporter):
    """A rich live display on ``console`` (stderr by default)."""

    interval = 0.2

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bars = _Bars(
            TextColumn("{task.description}", table_column=Column(width=20)),
            BarColumn(bar_width=32),
            MofNCompleteColumn(table_column=Column(min_width=15, justify="right")),
            _RateColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=8,
            transient=False,
            expand=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._annotations_total: int | None = None

    def start(self, snap: Snapshot) -> None:
        b = self.bars
        for key, label in (
            ("read", "rows read"),
            ("created", "inputs created"),
            ("processed", "inputs processed"),
            ("annotations", "annotations posted"),
            ("done", "rows done"),
        ):
            self._tasks[key] = b.add_task(label, total=None)
        self.update(snap)
        b.start()

    def update(self, snap: Snapshot) -> None:
        b = self.bars
        t = self._tasks
        # inputs: no total (a URL's rows may be spread over the file, so how many
        # distinct inputs it names is only known at the end)
        b.update(t["read"], completed=snap.rows_read, total=snap.total_rows)
        b.update(t["created"], completed=snap.inputs)
        b.update(t["processed"], completed=snap.inputs_processed)
        b.update(t["annotations"], completed=snap.annotations, total=self._estimate(snap))
        b.update(t["done"], completed=snap.rows_finished, total=snap.rows_to_send)
        self.update_status(snap)

    def _estimate(self, snap: Snapshot) -> int | None:
        """The annotations total to show: moved only when the estimate drifts by 2 %.

        A new total makes rich forget the bar's speed, so following every small change
        of the estimate would leave the bar without rate or time remaining.
        """
        est = snap.annotations_estimate
        shown = self._annotations_total
        if est is not None and (shown is None or abs(est - shown) > 0.02 * shown):
            self._annotations_total = shown = est
        return shown if shown is None else max(shown, snap.annotations)

    def log(self, message: str, *, style: str = "") -> None:
        self.console.print(Text(message, style=style or "yellow"))

    def stop(self, snap: Snapshot) -> None:
        # the run is over: every bar at its final value, totals as counted
        if not self._tasks:
            return
        b = self.bars
        t = self._tasks
        b.update(t["read"], completed=snap.rows_read, total=snap.rows_read)
        b.update(t["created"], completed=snap.inputs, total=snap.inputs)
        b.update(t["processed"], completed=snap.inputs_processed, total=snap.inputs_processed)
        b.update(t["annotations"], completed=snap.annotations, total=snap.annotations or None)
        b.update(t["done"], completed=snap.rows_finished, total=snap.rows_finished)
        self.update_status(snap)
        b.refresh()
        b.stop()

    def update_status(self, snap: Snapshot) -> None:
        style = "red" if snap.rows_failed else ""
        self.bars.status = Text.assemble(
            (f"{'':20} ", ""), (_elapsed(snap), "dim"), (" · ", ""), (_status_text(snap), style)
        )


def _elapsed(s: Snapshot) -> str:
    m, sec = divmod(int(s.elapsed), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d} elapsed" if h else f"{m}:{sec:02d} elapsed"


class PlainReporter(Reporter):
    """One line every ``every`` seconds on ``stream``, and one per event."""

    interval = 0.5

    def __init__(self, stream: TextIO, *, every: float = 5.0) -> None:
        self.stream = stream
        self.every = every
        self._next = every

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def line(self, s: Snapshot) -> str:
        total = f"/{s.total_rows}" if s.total_rows is not None else ""
        done = f"{s.rows_finished}" + (f"/{s.rows_to_send}" if s.rows_to_send is not None else "")
        return (
            f"[{_elapsed(s).split()[0]:>7}] rows read {s.rows_read}{total}, done {done} "
            f"(landed {s.rows_landed}, present {s.rows_present}, failed {s.rows_failed}) | "
            f"inputs created {s.inputs}, processed {s.inputs_processed} | "
            f"annotations {s.annotations} | {_status_text(s)}"
        )

    def update(self, snap: Snapshot) -> None:
        if snap.elapsed >= self._next:
            self._next = snap.elapsed + self.every
            self._write(self.line(snap))

    def log(self, message: str, *, style: str = "") -> None:
        self._write(message)

    def stop(self, snap: Snapshot) -> None:
        self._write(self.line(snap))


async def watch(
    reporter: Reporter,
    probe: Callable[[], Snapshot],
    *,
    detector: EventDetector | None = None,
) -> None:
    """Poll ``probe`` forever, feeding ``reporter``; cancel the task to stop it.

    Starts the reporter on the first poll; the caller calls ``reporter.stop``.
    """
    detector = detector or EventDetector()
    first = probe()
    detector.feed(first)
    reporter.start(first)
    while True:
        await anyio.sleep(reporter.interval)
        snap = probe()
        for event in detector.feed(snap):
            reporter.log(event)
        reporter.update(snap)


def reporter_for(mode: str, console: Console) -> Reporter:
    """The reporter for ``mode``: ``"live"``, ``"plain"``, ``"none"``, or ``"auto"``
    (live when ``console`` is a terminal, plain lines on stderr otherwise)."""
    if mode == "auto":
        mode = "live" if console.is_terminal else "plain"
    if mode == "live":
        return LiveReporter(console)
    if mode == "plain":
        return PlainReporter(sys.stderr)
    return Reporter()
