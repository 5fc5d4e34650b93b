"""Every exception ``ingest`` raises, and which failures are retried.

The tree::

    IngestError                      anything this package raises on purpose
    ├── ConfigError                  an option or credential is missing or malformed
    ├── SourceError                  the data file as a whole cannot be used
    │   ├── MissingColumnError       a required column is not in the header
    │   └── InvalidRowsError         ``strict`` is on and some rows are invalid
    ├── JournalError                 the resume journal is unusable or belongs to other data
    └── ClarifaiError                the service refused or could not be reached
        ├── AuthError                credentials rejected, scopes missing, app unknown:
        │                            the run stops at once
        ├── AccountError             the account, not the data, stops the run (input
        │                            quota, hourly limit, feature disabled, app deleted)
        ├── RetriesExhaustedError    a failure worth retrying outlasted the retry budget
        │                            (``Config.max_attempts`` sends within
        │                            ``Config.retry_time`` seconds)
        └── TransportError           a gRPC failure that no retry can fix
            ├── UnreachableError     first contact: nothing listens at the base's host
            │                        and port, or its host name does not resolve
            └── TLSError             the TLS handshake failed: untrusted certificate,
                                     wrong host name, a plaintext server behind
                                     ``https://`` or a TLS server behind ``http://``

Which failures are retried (by the client, and only there): the status codes in
:data:`RETRYABLE_CODES`, on a whole reply or on its items, and the gRPC failures in
:data:`RETRYABLE_GRPC` (the connection lost, a deadline passed) once the service has
answered once. On the first call, a connection that cannot be made at all raises
:class:`UnreachableError` or :class:`TLSError` at once: retrying would only delay the
sentence that says what to fix. Every other gRPC failure raises :class:`TransportError`
at once; a retryable one that lasts past the budget raises :class:`RetriesExhaustedError`.

Messages name options the way the library takes them, ``Config.<field>``, with the
environment variable that can give it where there is one (the command line turns each
``Config.<field>`` into its flag).

Row-level problems (a bad box, a broken URL) are never raised: each becomes a failed
outcome carrying its line number and reason, and the run goes on.
"""

from __future__ import annotations

import asyncio

import grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

__all__ = [
    "CALL_SCOPES",
    "FATAL_CODES",
    "PAT_WITHOUT_APP",
    "READ_SCOPES",
    "RETRYABLE_CODES",
    "RETRYABLE_GRPC",
    "STOP_CODES",
    "AccountError",
    "AuthError",
    "ClarifaiError",
    "ConfigError",
    "IngestError",
    "InvalidRowsError",
    "JournalError",
    "MissingColumnError",
    "RetriesExhaustedError",
    "SourceError",
    "TLSError",
    "TransportError",
    "UnreachableError",
    "first_error",
    "scopes_hint",
]

#: Status codes (top-level or per item) worth sending again after a pause
#: (docs/clarifai-facts.md, "Retries").
RETRYABLE_CODES: frozenset[int] = frozenset(
    {
        sc.CONN_THROTTLED,
        sc.TRY_AGAIN,
        sc.RPC_SERVER_UNAVAILABLE,
        sc.RPC_REQUEST_QUEUE_FULL,
        sc.RPC_REQUEST_TIMEOUT,
    }
)

#: gRPC failures worth sending again after a pause once the service has answered: the
#: connection lost (UNAVAILABLE), a deadline passed, a call the channel cancelled.
RETRYABLE_GRPC: frozenset[grpc.StatusCode] = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)

#: How the library names the credential options, for messages (``Config.<field>``, and
#: the environment variables :meth:`~ingest.config.Config.from_env` reads).
_KEY_OPTIONS = "Config.pat/Config.api_key (or CLARIFAI_PAT/CLARIFAI_API_KEY)"
_APP_OPTIONS = "Config.user_id/Config.app_id (or CLARIFAI_USER_ID/CLARIFAI_APP_ID)"

#: What to say when Clarifai answers that a personal access token came without its app.
PAT_WITHOUT_APP = f"a personal access token needs the app it writes to: give {_APP_OPTIONS}"

#: The calls an upload makes and the scope each needs from an app key with scopes
#: (Clarifai's scope names, docs "Scopes"; PostDatasets and PostDatasetInputs only when
#: the rows go into a dataset).
CALL_SCOPES: dict[str, str] = {
    "PostInputs": "Inputs:Add",
    "ListInputs": "Inputs:Get",
    "PatchInputs": "Inputs:Patch",
    "PostAnnotations": "Annotations:Add",
    "PostDatasets": "Datasets:Add",
    "PostDatasetInputs": "Datasets:Add",
    "PostDatasetVersions": "Datasets:Add",
}

#: The calls that only read the app (``ingest verify`` and ``ingest plan``) and the scope
#: each needs from an app key with scopes.
READ_SCOPES: dict[str, str] = {
    "ListInputs": "Inputs:Get",
    "ListAnnotations": "Annotations:Get",
    "ListDatasets": "Datasets:Get",
}

_ALL_SCOPES = ", ".join(dict.fromkeys(CALL_SCOPES.values()))


def scopes_hint(method: str) -> str:
    """What to say when ``method`` was refused for the key's scopes."""
    needed = CALL_SCOPES.get(method)
    if needed is None and method in READ_SCOPES:
        return (
            f"the key lacks the scope {READ_SCOPES[method]} that reading the app needs "
            f"({method}); give the key {READ_SCOPES[method]}"
        )
    refused = f"{method} needs {needed}" if needed else f"{method} was refused"
    return (
        f"the key lacks the scopes this upload needs ({refused}); create a key with {_ALL_SCOPES}"
    )


#: Status codes that no retry can fix: the whole run stops with one message.
FATAL_CODES: dict[int, str] = {
    sc.CONN_KEY_INVALID: f"the API key or personal access token was rejected; check {_KEY_OPTIONS}",
    sc.CONN_KEY_NOT_FOUND: (
        f"the API key or personal access token does not exist; check {_KEY_OPTIONS}"
    ),
    sc.CONN_INSUFFICIENT_SCOPES: (
        f"the key lacks the scopes this upload needs; create a key with {_ALL_SCOPES}"
    ),
    sc.CONN_DOES_NOT_EXIST: f"the app or user does not exist; check {_APP_OPTIONS}",
    sc.CONN_AUTH_METHOD_DISABLED: "this authentication method is disabled for the app",
    sc.CONN_INVALID_REQUEST: f"the request was refused as invalid; check {_APP_OPTIONS}",
}

#: Codes no row can fix, at the top of a reply or on its items: the account (its plan,
#: its limits, the app itself) stops the upload, and what to do about it.
STOP_CODES: dict[int, str] = {
    sc.INPUT_OVER_LIMIT: (
        "the app holds as many inputs as its plan allows; delete inputs or upgrade the plan"
    ),
    sc.CONN_EXCEEDS_LIMITS: "the account's limits are exceeded; check its usage and plan",
    sc.CONN_EXCEED_HOURLY_LIMIT: "the key's hourly request limit is used up; wait an hour",
    sc.CONN_EXCEED_MONTHLY_LIMIT: "the key's monthly request limit is used up; raise the limit",
    sc.CONN_ACCOUNT_ISSUES: (
        "the account or its plan does not allow this (a feature outside the plan's tier, "
        "an expired trial or card); check the account"
    ),
    sc.CONN_DOES_NOT_EXIST: (
        f"the app no longer exists (deleted during the upload?); check {_APP_OPTIONS}"
    ),
}


class IngestError(Exception):
    """Base of every exception raised on purpose by ``ingest``."""


class ConfigError(IngestError):
    """An option or credential is missing, malformed or contradictory."""


class SourceError(IngestError):
    """The data file as a whole cannot be used (unreadable, no header, not CSV)."""


class MissingColumnError(SourceError):
    """A required column is missing from the header (``hint``: what the header has instead)."""

    def __init__(self, column: str, *, path: str | None = None, hint: str = "") -> None:
        where = f"{path}: " if path else ""
        more = f"; {hint}" if hint else ""
        super().__init__(
            f"{where}line 1: required column {column!r} is missing from the header{more}"
        )
        self.column = column


class InvalidRowsError(SourceError):
    """``strict`` is on and at least one row is invalid; nothing was sent."""

    def __init__(self, count: int, first: str) -> None:
        super().__init__(f"{count} invalid row(s), nothing sent (strict mode); first: {first}")
        self.count = count


class JournalError(IngestError):
    """The resume journal cannot be used, or was written for different data."""


class ClarifaiError(IngestError):
    """The service refused a call or could not be reached.

    ``code`` is the Clarifai status code (or 0 for a transport failure) and
    ``description`` the service's own words.
    """

    def __init__(self, message: str, *, code: int = 0, description: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.description = description


class AuthError(ClarifaiError):
    """Credentials rejected, scopes missing or app unknown: nothing more can be sent."""


class AccountError(ClarifaiError):
    """The account, not the data, stops the run: an input quota reached, an hourly or
    monthly limit used up, a feature outside the plan, the app deleted mid-run.

    Raised once a whole call, or a bounded number of items, failed with one of
    :data:`STOP_CODES`; what landed stays in the journal, so the same command continues
    once the account allows it.
    """


class RetriesExhaustedError(ClarifaiError):
    """A failure worth retrying (throttling, a busy server, the connection lost mid-run, a
    deadline) lasted past the budget: ``Config.max_attempts`` sends within
    ``Config.retry_time`` seconds."""


class TransportError(ClarifaiError):
    """A gRPC-level failure that no retry can fix (a protocol error, a refused message).

    The retryable ones (:data:`RETRYABLE_GRPC`, once the service has answered) are retried
    and end, if they last, as :class:`RetriesExhaustedError`.
    """


class UnreachableError(TransportError):
    """The first call found nothing to talk to: nothing listens at the base's host and
    port, or the host name does not resolve."""


class TLSError(TransportError):
    """The TLS handshake failed: the certificate is not trusted, names another host, the
    server does not speak TLS at all, or a TLS server was given as ``http://``."""


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error worth showing from a task group's exception group.

    Depth first: the first :class:`IngestError`, else the first leaf that is not a
    cancellation, else ``group`` itself (every leaf was a cancellation). ``ingest`` runs
    on anyio's asyncio backend, whose cancellation is :class:`asyncio.CancelledError`.
    """
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for exc in g.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, IngestError):
            return exc
    for exc in leaves:
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group
