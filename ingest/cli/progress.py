"""Showing a run while it goes: a live display, plain lines, or nothing.

Nothing here sits in the data path. A polling task (:func:`watch`) reads the live
counters (``Ingester.report``, ``client.stats``, ``client.limiter``) a few times a
second into a :class:`Snapshot`, spots notable events (throttling, a retry storm,
failed rows) and hands both to a reporter:

* :class:`LiveReporter`: a rich display on stderr, one bar per stage (rows read,
  inputs created, inputs processed, annotations posted, rows done) with rate and
  time remaining, a status line (failures, retries, throttled, request rate against
  the budget) and one-line notices above the bars;
* :class:`PlainReporter`: one line every few seconds, and one per event (for logs
  and CI, when stderr is not a terminal);
* :class:`Reporter`: the silent base, for library use.

What the display promises: a total is shown only when it is known, and it does not
move. The rows and images come from the source's counting pass (the bars wait for it);
a resumed run counts only the rows it has to send, the rows done by an earlier run
shown apart; annotations have no total (the counting pass does not count boxes). A
request rate is shown once it spans :data:`RATE_WINDOW` seconds. An interrupted run
says so and where it stopped.
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, TextIO

import anyio
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Column
from rich.text import Text

from ingest.cli.common import scrub
from ingest.report import Report

__all__ = [
    "RATE_WINDOW",
    "Event",
    "EventDetector",
    "LiveReporter",
    "PlainReporter",
    "Reporter",
    "RequestRate",
    "Snapshot",
    "describe_failure",
    "fit",
    "reporter_for",
    "snapshot",
    "watch",
]

#: Seconds of requests a request rate is measured over, and the least a run must have
#: lasted before one is shown (a 2-second run mostly measures the server's full bucket).
RATE_WINDOW = 10.0

#: Seconds the display runs before its bars show a time remaining.
ETA_AFTER = 5.0


@dataclass(slots=True)
class Snapshot(Report):
    """A copy of the run's report at one moment, with what only the display needs.

    ``requests``, ``throttled`` and ``retries`` are the client's live counts when a
    client is given (the report takes them at the end).
    """

    elapsed: float = 0.0
    total_rows: int | None = None
    """Rows in the data, from the counting pass; None while unknown."""
    total_images: int | None = None
    """Images in the data, from the counting pass; None while unknown."""
    resumed_at_start: int = 0
    """Rows the journal holds as done by an earlier run: this run skips them."""
    rate: float = 0.0
    """Current request pace of the client-side limiter."""
    target: float = 0.0
    """The request budget (``--rps``)."""
    last_failure: str = ""
    """The latest failed row, as :func:`describe_failure` puts it."""
    last_image: str = ""
    """The URL or path of that row's image (a notice cuts it in the middle, if at all)."""
    interrupted: bool = False

    @property
    def inputs(self) -> int:
        """Inputs the app holds from this run: created, or there already."""
        return self.inputs_created + self.inputs_existing

    @property
    def inputs_settled(self) -> int:
        """Inputs whose processing ended, successfully or not."""
        return self.inputs_processed + self.inputs_failed

    @property
    def annotations(self) -> int:
        """Annotations the app holds from this run: created, or there already."""
        return self.annotations_created + self.annotations_existing

    @property
    def rows_finished(self) -> int:
        """Rows with an outcome this run: ``rows_done`` without the resumed ones."""
        return self.rows_done - self.rows_resumed

    @property
    def rows_read_now(self) -> int:
        """Rows read this run, without those skipped as done by an earlier run."""
        return self.rows_read - self.rows_resumed

    @property
    def rows_to_send(self) -> int | None:
        """Rows this run has to finish (the data's rows but the resumed ones), if known."""
        if self.total_rows is None:
            return None
        return max(self.total_rows - self.resumed_at_start, self.rows_read_now, self.rows_finished)

    @property
    def images_to_send(self) -> int | None:
        """Images this run has to create: known for a run that resumes nothing."""
        if self.total_images is None or self.resumed_at_start:
            return None
        return max(self.total_images, self.inputs)

    @property
    def counting(self) -> bool:
        """No row has gone on yet, and the counting pass (which gives the totals) may
        still run: the bars wait."""
        return self.rows_read == 0 and (self.total_rows is None or self.phase != "")


def snapshot(
    report: Report,
    client: Any = None,
    *,
    resumed: int = 0,
    last_failure: str = "",
    last_image: str = "",
    interrupted: bool = False,
) -> Snapshot:
    """Copy ``report`` and read the client's live stats.

    ``resumed``: the rows the journal holds as done, known before the run starts.
    """
    snap = Snapshot(**{f.name: getattr(report, f.name) for f in fields(Report)})
    snap.elapsed = time.monotonic() - report.started
    snap.total_rows = report.rows_total or None
    snap.total_images = getattr(report, "images_total", 0) or None
    snap.resumed_at_start = resumed
    snap.last_failure = last_failure
    snap.last_image = last_image
    snap.interrupted = interrupted
    stats = getattr(client, "stats", None)
    if stats is not None:
        snap.requests, snap.throttled, snap.retries = stats.requests, stats.throttled, stats.retries
    limiter = getattr(client, "limiter", None)
    if limiter is not None:
        snap.rate, snap.target = limiter.rate, limiter.target
    return snap


def describe_failure(line: int, error: str, image: str = "") -> str:
    """One line for a failed row: its line number once, the reason, and its image.

    An invalid row's reason already starts with its line (``line 9, column 'url': ...``);
    it is not said twice. The image is added when the reason does not name it.
    """
    error = " ".join(error.split())
    text = error if re.match(rf"line {line}\b", error) else f"line {line}: {error}"
    if image and image not in text:
        text += f" ({image})"
    return text


def _cut_middle(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width < 2:
        return "…"[:width]
    head = width // 2
    return text[:head] + "…" + text[len(text) - (width - head - 1) :]


def _cut_image(image: str, width: int) -> str:
    """``image`` (a URL or path) in ``width`` characters: its end, which names the image,
    kept whole as long as it fits; then as much of its start as fits."""
    if len(image) <= width:
        return image
    name = len(image) - image.rstrip("/").rfind("/")  # "/img_0001.jpg"
    if width <= name:
        return _cut_middle(image, width)
    return image[: width - name - 1] + "…" + image[len(image) - name :]


def fit(text: str, width: int, image: str = "") -> str:
    """``text`` on one line of at most ``width`` characters, cut in the middle.

    ``text`` is read as: a start up to its first line number (``... line 37397``), the
    rest, ``image`` (a URL or path within ``text``) and what follows it. What goes first:
    the middle of ``image`` down to its start's 16 characters and its end, which names the
    image; then the middle of the rest; then ``image``'s start; the start last.
    """
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    at = text.rfind(image) if image else -1
    before, after = (text, "") if at < 0 else (text[:at], text[at + len(image) :])
    image = image if at >= 0 else ""
    line = re.search(r"\bline \d+", before)
    head, rest = (before[: line.end()], before[line.end() :]) if line else ("", before)
    name = len(image) - image.rstrip("/").rfind("/") if image else 0
    excess = len(text) - width
    shown = max(len(image) - excess, min(len(image), name + 16))
    excess -= len(image) - shown
    rest_shown = max(len(rest) - excess, min(len(rest), 1))
    excess -= len(rest) - rest_shown
    shown = max(shown - max(excess, 0), min(len(image), name + 1))
    out = head + _cut_middle(rest, rest_shown) + _cut_image(image, shown) + after
    return out if len(out) <= width else _cut_middle(out, width)


class RequestRate:
    """Requests per second over the last ``window`` seconds, once a run is that long."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._marks: deque[tuple[float, int]] = deque()

    def feed(self, snap: Snapshot) -> float | None:
        marks = self._marks
        marks.append((snap.elapsed, snap.requests))
        horizon = snap.elapsed - self.window
        while len(marks) > 1 and marks[1][0] <= horizon:
            marks.popleft()
        since, before = marks[0]
        if snap.elapsed - since < self.window:
            return None
        return (snap.requests - before) / (snap.elapsed - since)


class Event(NamedTuple):
    """A notable moment: one line of text, and the image it names (cut last)."""

    text: str
    image: str = ""


class EventDetector:
    """Turns successive snapshots into notable events worth a line.

    Throttling (started, and over once the limiter is back at its budget), a retry
    storm (many retries within ``window`` seconds), failed rows (the first at once, then
    at most one notice per ``failures_every`` seconds, with the latest failure), the
    grouping of a file whose rows of one image are scattered (started, and done with
    what it cost).
    """

    def __init__(
        self,
        *,
        window: float = 5.0,
        retry_storm: int = 20,
        failures_every: float = 30.0,
        failed: str = "failed",
    ) -> None:
        self.window = window
        self.failed = failed
        """What the notice of failed rows says they did ("failed"; a verification's rows
        "differ")."""
        self.retry_storm = retry_storm
        self.failures_every = failures_every
        self._prev: Snapshot | None = None
        self._marks: list[Snapshot] = []
        self._throttling = False
        self._last: dict[str, float] = {}
        self._failed: tuple[float, int] = (0.0, 0)
        """When failures were last told, and how many rows had failed then."""

    def _may_speak(self, kind: str, now: float) -> bool:
        """True (and noted) when no event of ``kind`` was reported in the last window."""
        if now - self._last.get(kind, -1e9) < self.window:
            return False
        self._last[kind] = now
        return True

    def feed(self, snap: Snapshot) -> list[Event]:
        events: list[Event] = []
        prev, self._prev = self._prev, snap
        if prev is None:
            self._marks = [snap]
            self._failed = (snap.elapsed, snap.rows_failed)
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
                Event(
                    "the rows of some images are scattered through the data: grouping them "
                    f"by image on disk first{total}"
                )
            )
        elif snap.grouped and not prev.grouped:
            events.append(
                Event(
                    f"grouped by image in {snap.grouping_s:.1f} s "
                    f"({snap.grouping_temp_bytes / 1e6:,.1f} MB of temp files, removed at the end)"
                )
            )

        if snap.throttled > prev.throttled:
            if not self._throttling:
                self._throttling = True
                events.append(
                    Event(
                        f"throttling: the server refused {snap.throttled - prev.throttled} "
                        f"request(s) for rate; pacing down to {snap.rate:.1f} requests/s "
                        f"(budget {snap.target:g})"
                    )
                )
        elif self._throttling and snap.target and snap.rate >= snap.target * 0.999:
            self._throttling = False
            events.append(Event(f"throttling over: back to {snap.target:g} requests/s"))

        retries = snap.retries - base.retries
        if retries >= self.retry_storm and self._may_speak("retry", now):
            events.append(
                Event(
                    f"retry storm: {retries} calls retried in the last {now - base.elapsed:.0f} s"
                )
            )

        told_at, told = self._failed
        first = told == 0 and "fail" not in self._last
        if snap.rows_failed > told and (first or now - told_at >= self.failures_every):
            self._last["fail"] = now
            self._failed = (now, snap.rows_failed)
            failed = snap.rows_failed - told
            rows = "1 row" if failed == 1 else f"{failed:,} rows"
            events.append(
                Event(
                    f"{rows} {self.failed} in {max(now - told_at, 1):.0f} s; "
                    f"latest {snap.last_failure}",
                    snap.last_image,
                )
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

    def log(
        self, message: str, *, style: str = "", image: str = "", one_line: bool = False
    ) -> None:
        """Something worth a line: with ``one_line``, a notice that a live display keeps
        to one line, cut in the middle (``image``: a URL or path in it, cut first)."""

    def stop(self, snap: Snapshot) -> None:
        """The run ended (or was interrupted: ``snap.interrupted``); leave the screen tidy."""


def _status_text(s: Snapshot, request_rate: float | None) -> str:
    parts = [
        f"failed {s.rows_failed:,}" + (f" ({s.rows_invalid:,} invalid)" if s.rows_invalid else ""),
        f"retries {s.retries:,}",
        f"throttled {s.throttled:,}",
    ]
    if s.resumed_at_start:
        parts.insert(0, f"{s.resumed_at_start:,} done earlier")
    if request_rate is not None and s.target:
        pace = "" if s.rate >= s.target else f" (paced at {s.rate:.1f})"
        parts.append(f"{request_rate:.1f}/{s.target:g} req/s{pace}")
    else:
        parts.append(f"{s.requests:,} requests")
    return " · ".join(parts)


def _elapsed(s: Snapshot) -> str:
    m, sec = divmod(int(s.elapsed), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _where(s: Snapshot) -> str:
    """Where an interrupted run stopped."""
    todo = s.rows_to_send
    of = f" of {todo:,}" if todo is not None else ""
    return (
        f"interrupted at {_elapsed(s)} with {s.rows_finished:,}{of} rows done; "
        "the same command continues"
    )


class _CountColumn(ProgressColumn):
    """``done/total``, or ``done`` while the total is unknown."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        text = done if task.total is None else f"{done}/{int(task.total):,}"
        return Text(text, style="progress.download")


class _RateColumn(ProgressColumn):
    """Items per second, from rich's own speed estimate; nothing once interrupted."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if task.fields.get("interrupted") or speed is None:
            return Text("", style="progress.data.speed")
        return Text(f"{speed:,.1f}/s", style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    """``eta H:MM:SS`` for a bar with a total under way; nothing otherwise.

    None in the display's first :data:`ETA_AFTER` seconds: an estimate from the first
    few rows says more about the start than about the run.
    """

    def render(self, task: Task) -> Text:
        if task.fields.get("ended") or task.total is None or task.finished:
            return Text("")
        left = task.time_remaining
        if left is None or (task.elapsed or 0.0) < ETA_AFTER:
            return Text("eta -:--:--", style="progress.remaining")
        m, s = divmod(int(left), 60)
        h, m = divmod(m, 60)
        return Text(f"eta {h}:{m:02d}:{s:02d}", style="progress.remaining")


class _Bars(Progress):
    """rich Progress with a status line under the bars (the bars hidden while counting)."""

    status: Text = Text("")
    show_bars: bool = False

    def get_renderables(self) -> Any:
        if self.show_bars:
            yield self.make_tasks_table(self.tasks)
        yield self.status


_BARS = (
    ("read", "rows read"),
    ("created", "inputs created"),
    ("processed", "inputs processed"),
    ("annotations", "annotations posted"),
    ("done", "rows done"),
)


_PHASES = {"scanning": "counting the rows", "grouping": "grouping the rows by image on disk"}


class LiveReporter(Reporter):
    """A rich live display on ``console`` (stderr by default).

    A command showing other work says which bars (:attr:`shown`, each a key and its
    label), what each counts (:meth:`_counts`) and what the status line says
    (:meth:`_status`).
    """

    interval = 0.2
    shown: tuple[tuple[str, str], ...] = _BARS

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bars = _Bars(
            TextColumn("{task.description}", table_column=Column(width=20)),
            BarColumn(bar_width=28),
            _CountColumn(table_column=Column(min_width=15, justify="right")),
            _RateColumn(table_column=Column(min_width=10, justify="right")),
            _EtaColumn(),
            console=self.console,
            refresh_per_second=8,
            transient=False,
            expand=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._rate = RequestRate()

    def start(self, snap: Snapshot) -> None:
        for key, label in self.shown:
            self._tasks[key] = self.bars.add_task(label, total=None)
        self.update(snap)
        self.bars.start()

    def _counts(self, snap: Snapshot) -> dict[str, tuple[int, int | None]]:
        """Each bar's (completed, total)."""
        images = snap.images_to_send
        return {
            "read": (snap.rows_read_now, snap.rows_to_send),
            "created": (snap.inputs, images),
            "processed": (snap.inputs_settled, images),
            "annotations": (snap.annotations, None),
            "done": (snap.rows_finished, snap.rows_to_send),
        }

    def update(self, snap: Snapshot) -> None:
        for key, (completed, total) in self._counts(snap).items():
            self.bars.update(self._tasks[key], completed=completed, total=total)
        self.bars.show_bars = not snap.counting
        self.update_status(snap)

    def _status(self, snap: Snapshot, rate: float | None) -> str:
        """The status line's counts."""
        return _status_text(snap, rate)

    def log(
        self, message: str, *, style: str = "", image: str = "", one_line: bool = False
    ) -> None:
        text = scrub(message)
        if one_line:
            text = fit(text, max(self.console.width - 1, 20), scrub(image))
        self.console.print(Text(text, style=style or "yellow"), no_wrap=one_line)

    def stop(self, snap: Snapshot) -> None:
        if not self._tasks:
            return
        b = self.bars
        for key, (completed, total) in self._counts(snap).items():
            if not snap.interrupted and total is None:
                total = completed  # the run is over: what was done is all there was
            b.update(
                self._tasks[key],
                completed=completed,
                total=total,
                ended=True,
                interrupted=snap.interrupted,
            )
        b.show_bars = True
        self.update_status(snap)
        b.refresh()
        b.stop()

    def update_status(self, snap: Snapshot) -> None:
        rate = self._rate.feed(snap)
        if snap.counting:
            what = _PHASES.get(snap.phase, "starting")
            self.bars.status = Text(f"{_elapsed(snap)} elapsed · {what}…", style="dim")
            return
        style = "red" if snap.rows_failed else ""
        if snap.interrupted:
            self.bars.status = Text.assemble(
                (_where(snap), "bold yellow"), ("\n", ""), (self._status(snap, rate), style)
            )
            return
        self.bars.status = Text.assemble(
            (f"{_elapsed(snap)} elapsed", "dim"), (" · ", ""), (self._status(snap, rate), style)
        )


class PlainReporter(Reporter):
    """One line every ``every`` seconds on ``stream``, and one per event."""

    interval = 0.5

    def __init__(self, stream: TextIO, *, every: float = 5.0) -> None:
        self.stream = stream
        self.every = every
        self._next = every
        self._rate = RequestRate()
        self._last_rate: float | None = None

    def _write(self, text: str) -> None:
        self.stream.write(scrub(" ".join(text.splitlines())) + "\n")
        self.stream.flush()

    def line(self, s: Snapshot) -> str:
        todo = f"/{s.rows_to_send:,}" if s.rows_to_send is not None else ""
        images = f"/{s.images_to_send:,}" if s.images_to_send is not None else ""
        return (
            f"[{_elapsed(s):>7}] rows read {s.rows_read_now:,}{todo}, done {s.rows_finished:,}"
            f"{todo} (landed {s.rows_landed:,}, present {s.rows_present:,}, failed "
            f"{s.rows_failed:,}) | inputs created {s.inputs:,}{images}, processed "
            f"{s.inputs_settled:,} | annotations {s.annotations:,} | "
            f"{_status_text(s, self._last_rate)}"
        )

    def update(self, snap: Snapshot) -> None:
        self._last_rate = self._rate.feed(snap)
        if snap.elapsed >= self._next:
            self._next = snap.elapsed + self.every
            self._write(self.line(snap))

    def log(
        self, message: str, *, style: str = "", image: str = "", one_line: bool = False
    ) -> None:
        self._write(message)

    def stop(self, snap: Snapshot) -> None:
        self._last_rate = self._rate.feed(snap)
        self._write(self.line(snap))
        if snap.interrupted:
            self._write(_where(snap))


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
            reporter.log(event.text, image=event.image, one_line=True)
        reporter.update(snap)


def reporter_for(
    mode: str,
    console: Console,
    *,
    live: type[LiveReporter] = LiveReporter,
    plain: type[PlainReporter] = PlainReporter,
) -> Reporter:
    """The reporter for ``mode``: ``"live"``, ``"plain"``, ``"none"``, or ``"auto"``
    (live when ``console`` is a terminal, plain lines on stderr otherwise); ``live`` and
    ``plain`` are the classes that show a command's own work."""
    if mode == "auto":
        mode = "live" if console.is_terminal else "plain"
    if mode == "live":
        return live(console)
    if mode == "plain":
        return plain(sys.stderr)
    return Reporter()
