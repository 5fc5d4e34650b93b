"""The user's apps: created, got, listed and deleted under the caller's personal access
token, each app with a state of its own (:class:`~ingest.sandbox.state.AppState`).

The app ``options.app_id`` exists from the start; the others are made by PostApps (the
SDK's ``User.create_app``) and removed by DeleteApp (``User.delete_app``). A call naming
an app that does not exist is refused before its action (``Servicer._serve``).
"""

from __future__ import annotations

import uuid
from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2

from ingest.sandbox.checks import ID
from ingest.sandbox.replies import page_of, set_status
from ingest.sandbox.rpc import ServicerBase, rpc
from ingest.sandbox.state import AppState

__all__ = ["AppRPCs"]


class AppRPCs(ServicerBase):
    """PostApps, GetApp, ListApps, DeleteApp."""

    @rpc(service_pb2.MultiAppResponse, of_user=True)
    def PostApps(self, state: None, request: Any, reply: Any) -> None:
        # an App carries no status of its own: one bad id fails the whole call
        given_ids = [a.id for a in request.apps if a.id]
        for app_id in given_ids:
            if not ID.fullmatch(app_id):
                set_status(
                    reply.status,
                    sc.CONN_INVALID_REQUEST,
                    "Invalid request",
                    f"app id {app_id!r} must be 1 to 128 letters, digits, '_' or '-'",
                )
                return
            if self.apps.get(app_id) is not None or given_ids.count(app_id) > 1:
                set_status(
                    reply.status,
                    sc.DATABASE_DUPLICATE_KEY,
                    "App already exists",
                    f"an app with id {app_id!r} already exists for user {self.options.user_id}",
                )
                return
        for given in request.apps:
            made = self.apps.create(given.id or uuid.uuid4().hex)
            created = made.app.created_at
            made.app.CopyFrom(given)
            made.app.id = made.app_id
            made.app.name = given.name or made.app_id
            made.app.user_id = self.options.user_id
            made.app.created_at.CopyFrom(created)
            made.app.modified_at.CopyFrom(created)
            reply.apps.append(made.app)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.SingleAppResponse)
    def GetApp(self, state: AppState, request: Any, reply: Any) -> None:
        reply.app.CopyFrom(state.app)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiAppResponse, of_user=True)
    def ListApps(self, state: None, request: Any, reply: Any) -> None:
        """The user's apps; for an app key, its own app only."""
        apps = list(self.apps.by_id.values())
        if not self._caller.personal:
            apps = [a for a in apps if a.app_id == self._caller.app_id]
        reply.apps.extend(s.app for s in page_of(apps, request))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(status_pb2.BaseResponse)
    def DeleteApp(self, state: AppState, request: Any, reply: Any) -> None:
        """The app and everything in it: later calls naming it answer CONN_DOES_NOT_EXIST."""
        del self.apps.by_id[state.app_id]
        set_status(reply.status, sc.SUCCESS, "Ok")
