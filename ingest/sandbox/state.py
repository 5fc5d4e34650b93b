"""What the sandbox stores: one app's inputs and annotations, and their processing.

Processing is resolved lazily: each input gets a due time and a fate when created,
and its status is worked out whenever it is read: DOWNLOAD_PENDING for the first half
of its processing time, DOWNLOAD_IN_PROGRESS for the second, then DOWNLOAD_SUCCESS or
DOWNLOAD_FAILED. No task per input, so the sandbox holds hundreds of thousands of them
cheaply.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.options import SandboxOptions

__all__ = ["KINDS", "AppState", "Job", "StoredInput", "blob_of", "fraction", "payload"]

KINDS = ("image", "video", "audio", "text")
"""The kinds of data an input carries (``Data.image``, ``video``, ``audio``, ``text``)."""

PENDING, IN_PROGRESS, SUCCESS, FAILED, STUCK = (
    "pending",
    "in_progress",
    "success",
    "failed",
    "stuck",
)


_CODES: dict[str, int] = {
    PENDING: sc.INPUT_DOWNLOAD_PENDING,
    IN_PROGRESS: sc.INPUT_DOWNLOAD_IN_PROGRESS,
    SUCCESS: sc.INPUT_DOWNLOAD_SUCCESS,
    FAILED: sc.INPUT_DOWNLOAD_FAILED,
}
_KINDS: dict[int, str] = {code: kind for kind, code in _CODES.items()}
"""The state each download status code counts as in a job's progress."""


_DESCRIPTIONS: dict[int, str] = {
    sc.INPUT_DOWNLOAD_PENDING: "Download pending",
    sc.INPUT_DOWNLOAD_IN_PROGRESS: "Download in progress",
    sc.INPUT_DOWNLOAD_SUCCESS: "Download complete",
    sc.INPUT_DOWNLOAD_FAILED: "Input download failed",
}


def payload(data: Any) -> tuple[str, str, bytes]:
    """``(kind, url, bytes)`` of an input's data: the first kind given by URL, bytes or
    raw text (raw text counts as its UTF-8 bytes); ``("", "", b"")`` when none is."""
    for kind in KINDS:
        part = getattr(data, kind)
        blob = blob_of(kind, part)
        if part.url or blob:
            return kind, part.url, blob
    return "", "", b""


def blob_of(kind: str, part: Any) -> bytes:
    """The bytes of one kind of data: ``base64`` (raw bytes over gRPC), or a text's ``raw``
    (a ``Text`` has no ``base64``) as UTF-8."""
    if kind == "text":
        return bytes(part.raw.encode("utf-8"))
    return bytes(part.base64)


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
    midway: float = 0.0
    """When DOWNLOAD_PENDING turns into DOWNLOAD_IN_PROGRESS (monotonic clock)."""

    def status(self, now: float) -> str:
        """``pending`` (pending or in progress), ``success`` or ``failed``."""
        if self.fate == STUCK or now < self.due:
            return PENDING
        return self.fate

    def code(self, now: float) -> int:
        """The download status code at ``now``: PENDING, IN_PROGRESS, SUCCESS or FAILED."""
        if self.fate == STUCK:  # never picked up
            return int(sc.INPUT_DOWNLOAD_PENDING)
        if now < self.due:
            if now >= self.midway:
                return int(sc.INPUT_DOWNLOAD_IN_PROGRESS)
            return int(sc.INPUT_DOWNLOAD_PENDING)
        return _CODES[self.fate]


@dataclass(slots=True)
class Job:
    """An inputs-add job: the inputs PostInputs created under its id, and those it refused."""

    ids: list[str] = field(default_factory=list)
    refused: int = 0
    """Inputs of the job's calls that PostInputs refused (counted as failed when
    ``SandboxOptions.job_counts_refused``)."""
    cancelled: bool = False
    created: float = field(default_factory=time.time)


@dataclass
class AppState:
    """Inputs and annotations of one app, in insertion order."""

    options: SandboxOptions
    app_id: str = ""
    """The app's id (``options.app_id`` when not given)."""
    inputs: dict[str, StoredInput] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    by_input: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    """Every input id ever added, append-only; ``inputs[id].seq`` is its index here."""
    last_due: float = 0.0
    """When the last input that will ever finish processing finishes (monotonic clock)."""
    jobs: dict[str, Job] = field(default_factory=dict)
    datasets: dict[str, Any] = field(default_factory=dict)
    """Datasets by id (``resources_pb2.Dataset``)."""
    dataset_inputs: dict[str, dict[str, float]] = field(default_factory=dict)
    """Input ids of each dataset, in the order they joined, with when (wall clock)."""
    by_url: dict[str, str] = field(default_factory=dict)
    """Input id of each stored image URL (Clarifai refuses a second input with a URL)."""
    input_annotations: dict[str, Any] = field(default_factory=dict)
    """The input-level annotation PostInputs made from an input's concepts, by input id."""
    level_ids: dict[str, str] = field(default_factory=dict)
    """Input id of each input-level annotation, by annotation id."""
    concepts: dict[str, Any] = field(default_factory=dict)
    """The app's concepts by id (``resources_pb2.Concept``), made on first use by an input
    or an annotation, or by PostConcepts."""
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Versions of each dataset by id (``versions.Version``), oldest first."""
    app: Any = None
    """The app itself (``resources_pb2.App``)."""
    hosted_prefix: str = ""
    """Where the data host serves this app's bytes (``http://host:port``), "" when none."""
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng.seed(self.options.seed)
        if not self.app_id:
            self.app_id = self.options.app_id
        if self.app is None:
            self.app = resources_pb2.App(
                id=self.app_id, name=self.app_id, user_id=self.options.user_id
            )
            self.app.created_at.GetCurrentTime()

    @property
    def user_id(self) -> str:
        return str(self.options.user_id)

    def add_input(self, message: Any) -> StoredInput:
        """Store a new input (already validated) as PENDING."""
        opts = self.options
        kind, url, blob = payload(message.data)
        fate, reason = SUCCESS, ""
        if url and ("broken" in url or fraction(opts.seed, url) < opts.download_failure_rate):
            fate, reason = FAILED, f"could not download {url}: 404 Not Found"
        elif not url and (
            b"broken" in blob
            or fraction(opts.seed, hashlib.sha1(blob).hexdigest()) < opts.download_failure_rate
        ):
            fate, reason = FAILED, f"could not decode the {kind} bytes"
        elif fraction(opts.seed + 1, message.id) < opts.stuck_rate:
            fate = STUCK
        low, high = opts.processing
        now = time.monotonic()
        due = now + self.rng.uniform(low, high)
        if not opts.store:
            slim = resources_pb2.Input(id=message.id)
            if url:
                getattr(slim.data, kind).url = url
            slim.dataset_ids.extend(message.dataset_ids)
            message = slim
        stored = StoredInput(message, due, fate, reason, len(self.order), (now + due) / 2)
        self.inputs[message.id] = stored
        self.order.append(message.id)
        if url and kind == "image":
            self.by_url[url] = message.id
        wall = time.time()
        for dataset_id in message.dataset_ids:
            self.dataset_inputs.setdefault(dataset_id, {})[message.id] = wall
        if fate != STUCK and due > self.last_due:
            self.last_due = due
        return stored

    def code(self, stored: StoredInput, now: float) -> int:
        """The status code an input shows at ``now``, without building its message."""
        return stored.code(now)

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
        """The input as stored (bytes included), with its current status."""
        out = resources_pb2.Input()
        out.CopyFrom(stored.message)
        code = stored.code(time.monotonic() if now is None else now)
        out.status.code = code
        out.status.description = _DESCRIPTIONS[code]
        if code == sc.INPUT_DOWNLOAD_FAILED:
            out.status.details = stored.reason
        return out

    def listed(self, stored: StoredInput, now: float | None = None) -> Any:
        """The input as a reply shows it: its bytes replaced by the URL the data host
        serves them at (``hosted``: prefix, suffix, sizes), raw text kept."""
        out = self.render(stored, now)
        for kind in KINDS:
            part = getattr(out.data, kind)
            if not blob_of(kind, part):
                continue
            if kind != "text":
                part.ClearField("base64")
            if self.hosted_prefix and not part.url:
                suffix = self.hosted_suffix(kind, stored.message.id)
                part.url = f"{self.hosted_prefix}/orig/{suffix}"
                part.hosted.prefix = self.hosted_prefix
                part.hosted.suffix = suffix
                part.hosted.sizes.append("orig")
        return out

    def hosted_suffix(self, kind: str, input_id: str) -> str:
        """The path of an input's bytes on the data host, after ``/orig/``."""
        return f"users/{self.user_id}/apps/{self.app_id}/inputs/{kind}/{input_id}"

    def job_progress(self, job_id: str) -> dict[str, int] | None:
        """Counts of a PostInputs job's inputs by state, or None for an unknown job.

        Inputs deleted since are no longer counted; refused ones count as failed when
        ``options.job_counts_refused``."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        now = time.monotonic()
        counts = dict.fromkeys(_CODES, 0)
        for input_id in job.ids:
            stored = self.inputs.get(input_id)
            if stored is not None:
                counts[_KINDS[stored.code(now)]] += 1
        if self.options.job_counts_refused:
            counts[FAILED] += job.refused
        return counts

    def remember_concepts(self, concepts: Iterable[Any]) -> None:
        """Concepts named by an input or an annotation become the app's, if new."""
        for concept in concepts:
            if concept.id and concept.id not in self.concepts:
                kept = resources_pb2.Concept(
                    id=concept.id, name=concept.name or concept.id, app_id=self.app_id
                )
                kept.created_at.GetCurrentTime()
                self.concepts[concept.id] = kept

    def add_annotation(self, message: Any) -> None:
        stored = resources_pb2.Annotation()
        stored.CopyFrom(message)
        stored.status.code = sc.ANNOTATION_SUCCESS
        stored.status.description = "Annotation success"
        self.annotations[message.id] = stored if self.options.store else message.id
        self.by_input.setdefault(message.input_id, []).append(message.id)

    def add_input_annotation(self, message: Any) -> Any:
        """The input-level annotation of a new input that carries concepts or metadata
        (stored apart from :attr:`annotations`, which hold what PostAnnotations made)."""
        ann = resources_pb2.Annotation(id=uuid.uuid4().hex, input_id=message.id)
        ann.data.concepts.extend(message.data.concepts)
        if message.data.HasField("metadata"):
            ann.data.metadata.CopyFrom(message.data.metadata)
        ann.created_at.GetCurrentTime()
        ann.modified_at.CopyFrom(ann.created_at)
        ann.status.code = sc.ANNOTATION_SUCCESS
        ann.status.description = "Annotation success"
        self.input_annotations[message.id] = ann if self.options.store else ann.id
        self.level_ids[ann.id] = message.id
        return ann

    def delete_annotation(self, ann_id: str) -> bool:
        """Delete one annotation (input-level or not); False when there is none."""
        input_id = self.level_ids.pop(ann_id, None)
        if input_id is not None:
            del self.input_annotations[input_id]
            return True
        ann = self.annotations.pop(ann_id, None)
        if ann is None:
            return False
        lists = self.by_input.values() if isinstance(ann, str) else [self.by_input[ann.input_id]]
        for siblings in lists:  # with store=False only the id is kept: look for it
            if ann_id in siblings:
                siblings.remove(ann_id)
                break
        return True

    def delete_input(self, input_id: str) -> bool:
        stored = self.inputs.pop(input_id, None)
        if stored is None:
            return False
        url = stored.message.data.image.url
        if url and self.by_url.get(url) == input_id:
            del self.by_url[url]
        for members in self.dataset_inputs.values():
            members.pop(input_id, None)
        level = self.input_annotations.pop(input_id, None)
        if level is not None:
            self.level_ids.pop(level if isinstance(level, str) else level.id, None)
        for ann_id in self.by_input.pop(input_id, []):
            self.annotations.pop(ann_id, None)
        return True
