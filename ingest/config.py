"""Options of an upload: keyword-only, documented, validated, secrets never shown."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from ingest.errors import ConfigError
from ingest.ids import is_valid_id

__all__ = ["DEFAULT_BASE", "Config"]

DEFAULT_BASE = "https://api.clarifai.com"

#: Options the SDK's environment variables give (:meth:`Config.from_env`).
_FROM_ENV = (
    ("user_id", "CLARIFAI_USER_ID"),
    ("app_id", "CLARIFAI_APP_ID"),
    ("base", "CLARIFAI_API_BASE"),
)

#: Options that are Clarifai ids, with the variable that can give each.
_IDS = (("user_id", "CLARIFAI_USER_ID"), ("app_id", "CLARIFAI_APP_ID"), ("dataset_id", ""))


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """How to reach Clarifai and how hard to push.

    Credentials: a personal access token (``pat``, with ``user_id`` and ``app_id``) or
    an app-scoped ``api_key``. :meth:`from_env` fills what is not given from the SDK's
    variables: ``CLARIFAI_PAT`` (else ``CLARIFAI_API_KEY``), ``CLARIFAI_USER_ID``,
    ``CLARIFAI_APP_ID``, ``CLARIFAI_API_BASE`` and ``CLARIFAI_ROOT_CERTIFICATES_PATH``.
    Every option is checked when the Config is made (ids against Clarifai's id rules);
    a :class:`~ingest.errors.ConfigError` names it as ``Config.<field>``. Neither
    ``repr`` nor ``str`` ever shows a secret.
    """

    pat: str | None = field(default=None, repr=False)
    """Personal access token; needs ``user_id`` and ``app_id``."""
    api_key: str | None = field(default=None, repr=False)
    """App-scoped API key (the app is implied by the key)."""
    user_id: str | None = None
    """Owner of the app (with a PAT)."""
    app_id: str | None = None
    """The app to upload into (with a PAT)."""
    base: str = DEFAULT_BASE
    """``https://host[:port]`` for TLS, ``http://host:port`` for a plaintext server."""
    ca_file: str | None = None
    """PEM file of the certificate authorities to trust for TLS (https:// bases) instead of
    the system's; :meth:`from_env` takes it from ``CLARIFAI_ROOT_CERTIFICATES_PATH`` as
    the SDK does, and gRPC's own ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` is another way."""
    dataset_id: str | None = None
    """Put every input into this dataset (an id of ``A-Za-z0-9_-``)."""

    batch_size: int = 128
    """Inputs per PostInputs call (at most 128: docs/clarifai-facts.md, "Limits")."""
    annotation_batch_size: int = 128
    """Annotations per PostAnnotations call (at most 128)."""
    check_batch_size: int = 128
    """Input ids per ListInputs status check (at most 128)."""
    concurrency: int = 4
    """Calls in flight per stage."""
    rps: float = 15.0
    """Request budget per second shared by all stages (Clarifai's default per key is 15)."""
    linger: float = 1.0
    """Seconds a partial batch may wait for more items while more may come."""

    call_timeout: float = 60.0
    """gRPC deadline of each call, in seconds."""
    max_attempts: int = 10
    """Attempts per call (or per item inside a mixed reply) before giving up."""
    stop_after: int = 16
    """Items failed with a code no row can fix (input quota, account limits, see
    :data:`~ingest.errors.STOP_CODES`) before the run stops with
    :class:`~ingest.errors.AccountError`; a whole call failing so stops it at once."""
    retry_time: float = 300.0
    """Total seconds one call may spend retrying."""
    backoff: float = 0.5
    """First backoff in seconds; doubles each attempt, with full jitter."""
    backoff_max: float = 20.0
    """Longest single backoff in seconds."""

    processing_timeout: float = 600.0
    """Seconds an input may stay unprocessed before it counts as failed."""
    processing_estimate: float = 1.5
    """First guess of processing time; adapted to what the checks see."""
    max_pending: int = 8192
    """Inputs awaiting processing at once, before creation waits."""

    strict: bool = False
    """Refuse to send anything when any row is invalid."""
    queue_size: int = 512
    """Items buffered between two stages (backpressure keeps memory flat)."""
    tmp_dir: str | None = None
    """Where a file whose rows are not grouped by image is grouped on disk first
    (default: the system's temp folder); the temp files are removed at the end."""
    window: int = 4096
    """Rows from an iterable source held back to gather the rows of one image."""

    def __post_init__(self) -> None:
        if self.pat and self.api_key:
            raise ConfigError(
                "give either a personal access token (Config.pat) or an API key "
                "(Config.api_key), not both"
            )
        if self.pat and not (self.user_id and self.app_id):
            raise ConfigError(
                "a personal access token (Config.pat) needs a user id and an app id "
                "(Config.user_id and Config.app_id, or CLARIFAI_USER_ID and CLARIFAI_APP_ID)"
            )
        for name, var in _IDS:
            value = getattr(self, name)
            if value and not is_valid_id(value):
                given = f"Config.{name} (or {var})" if var else f"Config.{name}"
                raise ConfigError(
                    f"{given} must be an id of letters, digits, '_' and '-' "
                    f"(1 to 128 characters), not {value!r}"
                )
        for name, top in (
            ("batch_size", 128),
            ("annotation_batch_size", 128),
            ("check_batch_size", 128),
        ):
            value = getattr(self, name)
            if not 1 <= value <= top:
                raise ConfigError(f"Config.{name} must be between 1 and {top}, not {value}")
        if self.concurrency < 1:
            raise ConfigError(f"Config.concurrency must be at least 1, not {self.concurrency}")
        if self.rps <= 0:
            raise ConfigError(f"Config.rps must be positive, not {self.rps}")
        for name in ("call_timeout", "retry_time", "processing_timeout", "backoff"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"Config.{name} must be positive")
        if not self.backoff_max >= self.backoff:  # NaN too
            raise ConfigError(
                f"Config.backoff_max must be at least backoff ({self.backoff:g}), not "
                f"{self.backoff_max:g} (the longest backoff, and Config.backoff the first)"
            )
        for name in ("linger", "processing_estimate"):
            if not getattr(self, name) >= 0:
                raise ConfigError(
                    f"Config.{name} must not be negative, not {getattr(self, name):g}"
                )
        for name in ("max_attempts", "stop_after", "max_pending", "queue_size", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Config.{name} must be at least 1, not {getattr(self, name)}")
        if self.ca_file is not None:
            if not os.path.isfile(self.ca_file):
                raise ConfigError(
                    f"the CA file {self.ca_file} does not exist (Config.ca_file, or "
                    "CLARIFAI_ROOT_CERTIFICATES_PATH)"
                )
            if self.base.startswith("http://"):
                raise ConfigError(
                    "a CA file (Config.ca_file) is for TLS: give an https:// base with it "
                    "(Config.base, or CLARIFAI_API_BASE)"
                )
        _ = self.endpoint  # raises ConfigError for a malformed base

    @property
    def token(self) -> str | None:
        """The secret sent in the authorization header."""
        return self.pat or self.api_key

    @property
    def endpoint(self) -> tuple[str, int, bool]:
        """``(host, port, secure)`` parsed from :attr:`base`."""
        parts = urlsplit(self.base if "://" in self.base else f"https://{self.base}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "Config.base must look like https://host[:port] or http://host:port, not "
                f"{self.base!r} (CLARIFAI_API_BASE gives it too)"
            )
        secure = parts.scheme == "https"
        try:
            port = parts.port or (443 if secure else 80)
        except ValueError as exc:
            raise ConfigError(
                f"Config.base (or CLARIFAI_API_BASE) has an invalid port: {self.base!r}"
            ) from exc
        return parts.hostname, port, secure

    def with_options(self, **changes: Any) -> Config:
        """A copy with some options changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, /, **options: Any) -> Config:
        """Options given here, else the SDK's environment variables, else defaults.

        ``CLARIFAI_ROOT_CERTIFICATES_PATH`` gives ``ca_file`` as in the SDK, which uses
        it for TLS channels only: it is taken for an ``https://`` base and left aside
        for an ``http://`` one. An option given here always wins over its variable.
        """
        env = os.environ if environ is None else environ
        given = {k: v for k, v in options.items() if v is not None}
        if "api_key" not in given and "pat" not in given:
            if env.get("CLARIFAI_PAT"):
                given["pat"] = env["CLARIFAI_PAT"]
            elif env.get("CLARIFAI_API_KEY"):
                given["api_key"] = env["CLARIFAI_API_KEY"]
        for key, var in _FROM_ENV:
            if key not in given and env.get(var):
                given[key] = env[var]
        roots = env.get("CLARIFAI_ROOT_CERTIFICATES_PATH")
        if "ca_file" not in given and roots and not given.get("base", "").startswith("http://"):
            given["ca_file"] = roots
        return cls(**given)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("pat", "api_key"):
                if value:
                    shown.append(f"{f.name}='***'")
                continue
            shown.append(f"{f.name}={value!r}")
        return f"Config({', '.join(shown)})"

    __str__ = __repr__
