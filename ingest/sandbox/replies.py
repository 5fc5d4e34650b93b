"""Filling a reply: its status, the overall code of a call over many items, one page."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "STREAM_PAGE",
    "overall",
    "page_of",
    "set_status",
    "unknown_action",
]

T = TypeVar("T")

DEFAULT_PAGE, MAX_PAGE = 128, 1000
"""``per_page`` when unset, and its ceiling."""
STREAM_PAGE = 20
"""``per_page`` of StreamInputs when unset."""


def set_status(status: Any, code: int, description: str, details: str = "") -> None:
    """Write a Clarifai status (``details`` only when given)."""
    status.code = code
    status.description = description
    if details:
        status.details = details


def overall(reply: Any, ok: int, total: int) -> None:
    """The top-level status of a call over ``total`` items of which ``ok`` succeeded."""
    if ok == total:
        set_status(reply.status, sc.SUCCESS, "Ok")
    elif ok:
        set_status(reply.status, sc.MIXED_STATUS, "Mixed Success")
    else:
        set_status(reply.status, sc.FAILURE, "Failure")


def page_of(items: Iterable[T], request: Any, default: int = DEFAULT_PAGE) -> Iterator[T]:
    """The page of ``items`` that ``request`` asks for.

    ``per_page`` is ``default`` when unset and at most :data:`MAX_PAGE`; ``page`` counts
    from 1 (0, unset, means 1; a request without the field, StreamInputs, gets the first).
    """
    per_page = min(request.per_page or default, MAX_PAGE)
    page = max(getattr(request, "page", 1), 1)
    return itertools.islice(items, (page - 1) * per_page, page * per_page)


def unknown_action(reply: Any, action: str, allowed: tuple[str, ...]) -> bool:
    """True (the whole call refused, BAD_REQUEST) when a patch's ``action`` is not allowed."""
    if action in allowed:
        return False
    set_status(
        reply.status,
        sc.BAD_REQUEST,
        "Bad request",
        f"unknown action {action!r}: one of {', '.join(allowed)} expected",
    )
    return True
