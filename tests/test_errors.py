"""The one unwrapper of exception groups that the library and the CLI share."""

from __future__ import annotations

import asyncio
import re

import grpc

from ingest import errors
from ingest.errors import AuthError, first_error


def test_ours_first_at_any_depth() -> None:
    ours = AuthError("bad key")
    group = BaseExceptionGroup(
        "outer",
        [
            asyncio.CancelledError(),
            ValueError("a bug"),
            BaseExceptionGroup("inner", [asyncio.CancelledError(), ours]),
        ],
    )
    assert first_error(group) is ours


def test_else_the_first_that_is_not_a_cancellation() -> None:
    bug = ValueError("a bug")
    group = BaseExceptionGroup(
        "outer", [BaseExceptionGroup("inner", [asyncio.CancelledError()]), bug, KeyError("k")]
    )
    assert first_error(group) is bug


def test_else_the_group_itself() -> None:
    group = BaseExceptionGroup("outer", [asyncio.CancelledError(), asyncio.CancelledError()])
    assert first_error(group) is group


def test_the_docstrings_tree_is_the_class_tree() -> None:
    """Every exception in ``ingest.errors`` is drawn in its docstring under its base class,
    and nothing else is."""
    drawn: dict[str, str] = {}  # class -> parent, as the docstring draws them
    parents: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^ *(?:[│ ]*[├└]── )?([A-Z]\w+Error)\b", line)
        if not match:
            continue
        name = match.group(1)
        depth = len(line) - len(line.lstrip(" │├└─"))
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if parents:
            drawn[name] = parents[-1][1]
        parents.append((depth, name))
    actual = {
        name: cls.__bases__[0].__name__
        for name, cls in vars(errors).items()
        if isinstance(cls, type)
        and issubclass(cls, errors.IngestError)
        and cls is not errors.IngestError
    }
    assert drawn == actual


def test_transport_failures_retried_are_not_transport_errors() -> None:
    """What the client retries (``RETRYABLE_GRPC``) ends, if it lasts, as
    ``RetriesExhaustedError``; ``TransportError`` is what no retry fixes."""
    assert grpc.StatusCode.UNAVAILABLE in errors.RETRYABLE_GRPC
    assert not issubclass(errors.RetriesExhaustedError, errors.TransportError)
    assert issubclass(errors.UnreachableError, errors.TransportError)
    assert issubclass(errors.TLSError, errors.TransportError)
