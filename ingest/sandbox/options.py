"""The sandbox's knobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.sandbox.patching import OVERWRITE_READINGS

__all__ = ["DATASET_MEMBER_AGAIN", "PENDING_ANNOTATIONS", "SandboxOptions"]

PENDING_ANNOTATIONS = ("refuse", "accept")
"""The readings of an annotation posted on an input still processing."""

DATASET_MEMBER_AGAIN = ("accept", "refuse")
"""The readings of PostDatasetInputs naming an input the dataset holds already."""


@dataclass(frozen=True, kw_only=True)
class SandboxOptions:
    """How the sandbox behaves. Every fault is off by default; all draws come from ``seed``.

    Raises ValueError for a value out of range (a rate outside [0, 1], a negative delay).
    """

    host: str = "127.0.0.1"
    """Address to bind (loopback by default)."""
    port: int = 0
    """Port to bind; 0 picks a free one."""
    user_id: str = "sandbox"
    """The one user."""
    app_id: str = "sandbox-app"
    """The user's app."""
    pats: tuple[str, ...] = ("sandbox-pat",)
    """Personal access tokens of ``user_id``; requests must name the app in ``user_app_id``."""
    api_keys: tuple[str, ...] = ("sandbox-key",)
    """App keys scoped to ``app_id``."""
    scoped_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """App keys with only the given scopes (``"Inputs:Get"``...).

    Calls outside them answer CONN_INSUFFICIENT_SCOPES; MyScopes tells each key its own.
    ``ingest.sandbox.auth.READ_SCOPES`` (``ingest sandbox --read-only-key KEY``) makes a
    key that lists and gets everything and writes nothing."""
    rps: float | None = 15.0
    """Requests per second per key (token bucket, one second of burst); 0 or None: unlimited."""
    latency: float = 0.0
    """Seconds added to every call."""
    latency_jitter: float = 0.0
    """Uniform +/- jitter around ``latency``."""
    processing: tuple[float, float] = (0.5, 2.0)
    """Seconds from PENDING to DOWNLOAD_SUCCESS/FAILED, drawn uniformly."""
    download_failure_rate: float = 0.0
    """Fraction of URLs that fail to download (deterministic by URL); ``broken`` always fails."""
    stuck_rate: float = 0.0
    """Fraction of inputs (deterministic by id) that never finish processing."""
    unavailable_rate: float = 0.0
    """Fraction of calls answered gRPC UNAVAILABLE before acting."""
    lost_reply_rate: float = 0.0
    """Fraction of calls that act, then fail with gRPC UNAVAILABLE."""
    spike_rate: float = 0.0
    """Fraction of calls delayed by ``spike_seconds`` more."""
    spike_seconds: float = 0.0
    """Length of a latency spike."""
    seed: int = 0
    """Seed of every random draw."""
    stats_path: str | None = None
    """Where to write the statistics as JSON at shutdown."""
    store: bool = True
    """Keep full input and annotation messages (off: keep ids and statuses only, for huge runs)."""
    datasets: tuple[str, ...] | None = None
    """Datasets the app has at start. A tuple: PostInputs fails an input naming any other
    dataset (as Clarifai does) until PostDatasets creates it. None (the default): a dataset
    named by PostInputs springs into existence (lenient, for callers that never create one)."""
    unique_urls: bool = True
    """Refuse, as Clarifai does, an input whose URL another input already has
    (INPUT_DUPLICATE, "duplicate URL") unless its ``Image.allow_duplicate_url`` is set.
    Off: any number of inputs may share a URL."""
    tls: bool = False
    """Serve TLS with a certificate made at start by a throw-away CA (``Sandbox.ca_file``)."""
    tls_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    """Host names and addresses the TLS certificate is issued for."""
    input_quota: int | None = None
    """Most inputs the app may hold; past it each new input fails with INPUT_OVER_LIMIT
    (a plan's input quota). None: no quota."""
    hourly_limit: int | None = None
    """Requests per key per hour (counted from start); past it every call answers
    CONN_EXCEED_HOURLY_LIMIT. None: no limit."""
    disabled: tuple[str, ...] = ()
    """Methods (``"PostAnnotations"``...) the plan does not allow: they answer
    CONN_ACCOUNT_ISSUES ("feature not supported in your tier")."""
    delete_app_after: int | None = None
    """The app is deleted after this many calls (any key): later calls answer
    CONN_DOES_NOT_EXIST. None: never."""

    # -- readings of loosely documented behaviour (docs/clarifai-behaviour.md, "Readings")
    pending_annotations: str = "refuse"
    """What PostAnnotations does with an annotation of an input still processing:
    ``"refuse"`` (the default: ANNOTATION_INVALID_ARGUMENT "Input not ready"; the docs say
    an input is labelled "once your input is successfully indexed", and the SDK's own
    ``upload_dataset`` waits for processing first) or ``"accept"`` (stored at once, as if
    Clarifai took it; it stays if the input later fails)."""
    dataset_member_again: str = "accept"
    """What PostDatasetInputs answers for an input the dataset holds already (the docs do
    not say): ``"accept"`` (the default: SUCCESS, nothing changes) or ``"refuse"`` (the
    item fails with DATASET_INPUT_DUPLICATE, a code the status codes list; the call is
    MIXED_STATUS or FAILURE)."""
    job_counts_refused: bool = False
    """Whether an inputs-add job counts the inputs PostInputs refused (as failed). Off (the
    default, the proto's words): a job collects "statistics about created inputs" only, and
    a call whose every input was refused leaves a job with all counts 0."""
    data_host: bool = True
    """Serve the bytes of inputs (and dataset exports) over HTTP on ``host``, a port of its
    own, as Clarifai's data host does: listed inputs carry that hosted URL instead of their
    bytes. Off: listed inputs carry neither (their bytes are never sent back)."""
    patch_overwrite: str = "whole"
    """The reading of PatchInputs ``overwrite`` (the docs admit three; see
    :mod:`ingest.sandbox.patching`): ``"whole"`` replaces the input's metadata and concepts
    with what was sent (the page as served today, and its examples); ``"keys"`` replaces
    the value of each top-level metadata key sent and keeps the others; ``"deep"`` merges
    objects recursively and replaces scalars and lists."""

    def __post_init__(self) -> None:
        rates = (
            "download_failure_rate",
            "stuck_rate",
            "unavailable_rate",
            "lost_reply_rate",
            "spike_rate",
        )
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        for name in ("latency", "latency_jitter", "spike_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        low, high = self.processing
        if not 0.0 <= low <= high:
            raise ValueError(f"processing must be (min, max) with 0 <= min <= max, got {low, high}")
        if self.rps is not None and self.rps < 0:
            raise ValueError(f"rps must not be negative, got {self.rps}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must lie in [0, 65535], got {self.port}")
        for name in ("input_quota", "hourly_limit", "delete_app_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.tls and not self.tls_hosts:
            raise ValueError("tls needs at least one host name for the certificate")
        if not self.pats and not self.api_keys and not self.scoped_keys:
            raise ValueError("give at least one personal access token or API key")
        if self.dataset_member_again not in DATASET_MEMBER_AGAIN:
            raise ValueError(
                f"dataset_member_again must be one of {', '.join(DATASET_MEMBER_AGAIN)}, "
                f"got {self.dataset_member_again!r}"
            )
        if self.pending_annotations not in PENDING_ANNOTATIONS:
            raise ValueError(
                f"pending_annotations must be one of {', '.join(PENDING_ANNOTATIONS)}, "
                f"got {self.pending_annotations!r}"
            )
        if self.patch_overwrite not in OVERWRITE_READINGS:
            raise ValueError(
                f"patch_overwrite must be one of {', '.join(OVERWRITE_READINGS)}, "
                f"not {self.patch_overwrite!r}"
            )
