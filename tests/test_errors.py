"""The one unwrapper of exception groups that the library and the CLI share."""

from __future__ import annotations

import asyncio

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
