"""What the sandbox stores: one app's inputs and annotations, and their processing.

Processing is resolved lazily: each input gets a due time and a fate when created,
and its status is worked out whenever it is read. No task per input, so the
sandbox holds hundreds of thousands of them cheaply.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.options import SandboxOptions

__all__ = ["AppState", "StoredInput", "fraction"]

PENDING, SUCCESS, FAILED, STUCK = "pending", "success", "failed", "stuck"


_CODES: dict[str, int] = {
    PENDING: sc.INPUT_DOWNLOAD_PENDING,
    STUCK: sc.INPUT_DOWNLOAD_PENDING,
    SUCCESS: sc.INPUT_DOWNLOAD_SUCCESS,
    FAILED: sc.INPUT_DOWNLOAD_FAILED,
}


def fraction(seed: int, text: str) -> float:
    """A stable number in [0, 1) for ``text``: decides fates by URL or id, not by chance."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(slots=True)
class StoredInput:
    """One input: its message, when it finishes processing, and how."""

    message: Any
    due: float
    fate: str
    reason: str = ""
    seq: int = 0
    """Position in :attr:`AppState.order` (insertion order, for StreamInputs)."""

    def status(self, now: float) -> str:
        if self.fate == STUCK or now < self.due:
            return PENDING
        return self.fate


@dataclass
class AppState:
    """Inputs and annotations of one app, in insertion order."""

    options: SandboxOptions
    inputs: dict[str, StoredInput] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    by_input: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    """Every input id ever added, append-only; ``inputs[id].seq`` is its index here."""
    last_due: float = 0.0
    """When the last input that will ever finish processing finishes (monotonic clock)."""
    jobs: dict[str, Any] = field(default_factory=dict)
    datasets: set[str] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng.seed(self.options.seed)

    def add_input(self, message: Any) -> StoredInput:
        """Store a new input (already validated) as PENDING."""
        opts = self.options
        url = message.data.image.url
        fate, reason = SUCCESS, ""
        if url and ("broken" in url or fraction(opts.seed, url) < opts.download_failure_rate):
            fate, reason = FAILED, f"could not download {url}: 404 Not Found"
        elif not url and (
            b"broken" in message.data.image.base64
            or fraction(opts.seed, hashlib.sha1(message.data.image.base64).hexdigest())
            < opts.download_failure_rate
        ):
            fate, reason = FAILED, "could not decode the image bytes"
        elif fraction(opts.seed + 1, message.id) < opts.stuck_rate:
            fate = STUCK
        low, high = opts.processing
        due = time.monotonic() + self.rng.uniform(low, high)
        if not opts.store:
            slim = resources_pb2.Input(id=message.id)
            slim.data.image.url = url
            message = slim
        stored = StoredInput(message, due, fate, reason, len(self.order))
        self.inputs[message.id] = stored
        self.order.append(message.id)
        if fate != STUCK and due > self.last_due:
            self.last_due = due
        return stored

    def code(self, stored: StoredInput, now: float) -> int:
        """The status code an input shows at ``now``, without building its message."""
        return _CODES[stored.status(now)]

    def walk(self, last_id: str = "", descending: bool = False) -> Iterator[StoredInput]:
        """Live inputs in insertion order (or its reverse), starting after ``last_id``.

        Costs O(items returned) however many inputs are stored: ``order`` is indexed
        by each input's ``seq``, and deleted inputs are skipped as they come up.
        """
        anchor = self.inputs.get(last_id) if last_id else None
        if descending:
            start = anchor.seq - 1 if anchor is not None else len(self.order) - 1
            if last_id and anchor is None:
                return
            positions: Iterable[int] = range(start, -1, -1)
        else:
            if last_id and anchor is None:
                return
            positions = range(anchor.seq + 1 if anchor is not None else 0, len(self.order))
        for n in positions:
            stored = self.inputs.get(self.order[n])
            if stored is not None and stored.seq == n:
                yield stored

    def render(self, stored: StoredInput, now: float | None = None) -> Any:
        """The input as a reply shows it, with its current status."""
        out = resources_pb2.Input()
        out.CopyFrom(stored.message)
        state = stored.status(time.monotonic() if now is None else now)
        if state == PENDING:
            out.status.code = sc.INPUT_DOWNLOAD_PENDING
            out.status.description = "Download pending"
        elif state == SUCCESS:
            out.status.code = sc.INPUT_DOWNLOAD_SUCCESS
            out.status.description = "Download complete"
        else:
            out.status.code = sc.INPUT_DOWNLOAD_FAILED
            out.status.description = "Input download failed"
            out.status.details = stored.reason
        return out

    def job_progress(self, job_id: str) -> dict[str, int] | None:
        """Counts of a PostInputs job's inputs by state, or None for an unknown job."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        now = time.monotonic()
        counts = {PENDING: 0, SUCCESS: 0, FAILED: 0}
        for input_id in job["ids"]:
            stored = self.inputs.get(input_id)
            if stored is not None:
                counts[stored.status(now)] += 1
        return counts

    def add_annotation(self, message: Any) -> None:
        stored = resources_pb2.Annotation()
        stored.CopyFrom(message)
        stored.status.code = sc.ANNOTATION_SUCCESS
        stored.status.description = "Annotation success"
        self.annotations[message.id] = stored if self.options.store else message.id
        self.by_input.setdefault(message.input_id, []).append(message.id)

    def delete_input(self, input_id: str) -> bool:
        if self.inputs.pop(input_id, None) is None:
            return False
        for ann_id in self.by_input.pop(input_id, []):
            self.annotations.pop(ann_id, None)
        return True
