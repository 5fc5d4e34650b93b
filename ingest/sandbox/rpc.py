"""How a V2 method is made of its action, and what every group of actions may use.

Each V2 method is written as its action (fill the reply from the state of the app the
request names) under ``@rpc(ReplyType)``; the decorator makes it the gRPC method, which
runs the action through ``Servicer._serve`` (faults, latency, authentication, the app,
limits, then the action). The actions are grouped by what they serve (apps, datasets,
versions, concepts, annotations) in classes the servicer inherits, all built on
:class:`ServicerBase`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ingest.sandbox.auth import Caller
from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.state import AppState
from ingest.sandbox.stats import Stats

__all__ = ["Action", "Apps", "ServicerBase", "rpc", "user_level"]

Action = Callable[[Any, Any, Any], None]
"""``action(state, request, reply)``: ``state`` is the app's :class:`AppState` (None for
a method of the user, such as PostApps)."""
_Handler = Callable[[Any, Any, Any, Any], None]
_Method = Callable[[Any, Any, Any], Awaitable[Any]]

USER_LEVEL: set[str] = set()
"""Methods that act on the user (its apps, its keys' scopes), not inside one app."""


def rpc(reply_type: Any, *, of_user: bool = False) -> Callable[[_Handler], _Method]:
    """Makes a V2 method of an action: the decorated function fills the reply
    (``reply_type``) to ``request`` from ``state``, and the method gRPC calls runs it
    through ``Servicer._serve`` under the function's name. ``of_user``: the method acts
    on the user, not inside an app (the request names no app)."""

    def wrap(handler: _Handler) -> _Method:
        name = handler.__name__
        if of_user:
            USER_LEVEL.add(name)

        async def method(self: Any, request: Any, context: Any) -> Any:
            return await self._serve(name, request, context, reply_type, partial(handler, self))

        method.__name__, method.__qualname__ = name, handler.__qualname__
        method.__doc__ = handler.__doc__
        return method

    return wrap


def user_level(method: str) -> bool:
    """True for a method that acts on the user rather than inside one app."""
    return method in USER_LEVEL


class Apps:
    """The user's apps by id, each with its state, in the order they were created."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.by_id: dict[str, AppState] = {}
        self.hosted_prefix = ""
        """``http://host:port`` of the data host once it serves (see :mod:`.hosting`)."""

    def create(self, app_id: str) -> AppState:
        """A new, empty app of the user."""
        state = AppState(self.options, app_id=app_id)
        state.hosted_prefix = self.hosted_prefix
        self.by_id[app_id] = state
        return state

    def get(self, app_id: str) -> AppState | None:
        return self.by_id.get(app_id)

    def host_at(self, prefix: str) -> None:
        """Every app's bytes are now served under ``prefix``."""
        self.hosted_prefix = prefix
        for state in self.by_id.values():
            state.hosted_prefix = prefix


class ServicerBase:
    """What the groups of actions share with the servicer (declared here, set there)."""

    options: SandboxOptions
    stats: Stats
    apps: Apps
    _caller: Caller
    """Who makes the call being served (set right before its action runs)."""
