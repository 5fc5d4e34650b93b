"""What the sandbox stores: one app's inputs and annotations, and their processing.

Processing is resolved lazily: each input gets a due time and a fate when created,
and its status is worked out whenever it is read. No task per input, so the
sandbox holds hundreds of thousands of them cheaply.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.options import SandboxOptions

__all__ = ["AppState", "StoredInput", "fraction"]

PENDING, SUCCESS, FAILED, STUCK = "pending", "success", "failed", "stuck"


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
        stored = StoredInput(message, due, fate, reason)
        self.inputs[message.id] = stored
        return stored

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
