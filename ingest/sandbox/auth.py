"""Who is calling: the authorization metadata, the app a PAT names, an app key's scopes.

Refusals come inside a normal reply, as Clarifai sends them (CONN_KEY_INVALID,
CONN_INSUFFICIENT_SCOPES, CONN_DOES_NOT_EXIST); where each wording comes from is listed
in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

from typing import Any

from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.replies import set_status

__all__ = ["KEY_INVALID", "ME", "SCOPES", "app_not_found", "authenticate"]

KEY_INVALID = "Invalid API key or Invalid API key/application pair"
ME = "me"
"""The alias of the caller's own user id."""
SCOPES = {
    "PostInputs": "Inputs:Add",
    "ListInputs": "Inputs:Get",
    "GetInput": "Inputs:Get",
    "StreamInputs": "Inputs:Get",
    "PatchInputs": "Inputs:Patch",
    "DeleteInputs": "Inputs:Delete",
    "GetInputsAddJob": "Inputs:Get",
    "CancelInputsAddJob": "Inputs:Add",
    "PostAnnotations": "Annotations:Add",
    "ListAnnotations": "Annotations:Get",
    "ListWorkflows": "Workflows:Get",
    "GetApp": "Apps:Get",
    "GetDataset": "Datasets:Get",
    "ListDatasets": "Datasets:Get",
    "PostDatasets": "Datasets:Add",
    "ListDatasetInputs": "Inputs:Get",
    "PostDatasetInputs": "Datasets:Add",
}
"""The scope each method needs from an app key with scopes."""


def authenticate(
    options: SandboxOptions, method: str, request: Any, metadata: Any, reply: Any
) -> str | None:
    """The key to rate-limit on, or None after writing the refusal into ``reply``.

    ``metadata`` is the call's invocation metadata (``(name, value)`` pairs).
    """
    token = ""
    for name, value in metadata or ():
        if name == "authorization" and value.startswith("Key "):
            token = value[4:]
    user_app = getattr(request, "user_app_id", None)
    if token in options.pats:
        if user_app is None or not user_app.app_id or not user_app.user_id:
            set_status(
                reply.status,
                sc.CONN_KEY_INVALID,
                KEY_INVALID,
                "Must provide app external ID in API authorizer",
            )
            return None
        user_id = options.user_id if user_app.user_id == ME else user_app.user_id
        if user_id != options.user_id or user_app.app_id != options.app_id:
            app_not_found(reply, user_app.user_id, user_app.app_id)
            return None
        return token
    if token in options.api_keys:
        return token
    if token in options.scoped_keys:
        needed = SCOPES.get(method, "")
        if needed not in options.scoped_keys[token]:
            set_status(
                reply.status,
                sc.CONN_INSUFFICIENT_SCOPES,
                "API key has insufficient scopes",
                f"Missing scope(s): {needed}",
            )
            return None
        return token
    set_status(reply.status, sc.CONN_KEY_INVALID, KEY_INVALID)
    return None


def app_not_found(reply: Any, user_id: str, app_id: str) -> None:
    """The refusal for a path naming an app that does not exist (or no longer does)."""
    set_status(
        reply.status,
        sc.CONN_DOES_NOT_EXIST,
        "Resource does not exist",
        f"app identified by path /users/{user_id}/apps/{app_id} not found",
    )
