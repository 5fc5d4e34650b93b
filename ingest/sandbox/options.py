"""The sandbox's knobs."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SandboxOptions"]


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

    Calls outside them answer CONN_INSUFFICIENT_SCOPES."""
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
        if not self.pats and not self.api_keys and not self.scoped_keys:
            raise ValueError("give at least one personal access token or API key")
