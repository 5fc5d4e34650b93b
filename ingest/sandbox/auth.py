"""Who is calling: the authorization metadata, the app a PAT names, an app key's scopes.

Refusals come inside a normal reply, as Clarifai sends them (CONN_KEY_INVALID,
CONN_INSUFFICIENT_SCOPES, CONN_DOES_NOT_EXIST); where each wording comes from is listed
in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.replies import set_status

__all__ = [
    "ALL",
    "ENDPOINT",
    "KEY_INVALID",
    "ME",
    "READ_SCOPES",
    "SCOPES",
    "Caller",
    "app_not_found",
    "authenticate",
    "endpoints_of",
    "is_write",
]

KEY_INVALID = "Invalid API key or Invalid API key/application pair"
ME = "me"
"""The alias of the caller's own user id."""
ALL = "All"
"""The scope MyScopes names for a credential that may do everything."""
ENDPOINT = "/clarifai.api.V2/{}"
"""The fully qualified name of a method, as MyScopes and ListScopes name endpoints."""

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
    "PatchAnnotations": "Annotations:Patch",
    "DeleteAnnotations": "Annotations:Delete",
    "PostConcepts": "Concepts:Add",
    "ListConcepts": "Concepts:Get",
    "GetConcept": "Concepts:Get",
    "PatchConcepts": "Concepts:Patch",
    "ListWorkflows": "Workflows:Get",
    "GetApp": "Apps:Get",
    "ListApps": "Apps:Get",
    "PostApps": "Apps:Add",
    "DeleteApp": "Apps:Delete",
    "GetDataset": "Datasets:Get",
    "ListDatasets": "Datasets:Get",
    "PostDatasets": "Datasets:Add",
    "PatchDatasets": "Datasets:Patch",
    "DeleteDatasets": "Datasets:Delete",
    "ListDatasetInputs": "Inputs:Get",
    "PostDatasetInputs": "Datasets:Add",
    "PostDatasetVersions": "Datasets:Add",
    "ListDatasetVersions": "Datasets:Get",
    "GetDatasetVersion": "Datasets:Get",
    "DeleteDatasetVersions": "Datasets:Delete",
    "ListDatasetVersionMetricsGroups": "Datasets:Get",
    "PutDatasetVersionExports": "Datasets:Add",
    "MyScopes": "",
    "ListScopes": "",
}
"""The scope each method needs from an app key with scopes ("" for none: any valid key)."""
APP_KEY_USER_METHODS = frozenset({"ListApps"})
"""Methods of the user an app key may call (ListApps answers with the key's own app)."""
READ_SCOPES = tuple(sorted({s for s in SCOPES.values() if s.endswith(":Get")}))
"""Every reading scope: an app key with these lists and gets everything, and writes nothing."""


def is_write(method: str) -> bool:
    """True for a method that changes what the app holds (anything but Get, List, Stream,
    MyScopes and ListScopes)."""
    needed = SCOPES.get(method)
    return needed is None or (needed != "" and not needed.endswith(":Get"))


def endpoints_of(scopes: tuple[str, ...] | None) -> list[str]:
    """The endpoints a credential with ``scopes`` may call (None: all of them)."""
    return sorted(
        ENDPOINT.format(method)
        for method, needed in SCOPES.items()
        if scopes is None or not needed or needed in scopes
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated call: the key to rate-limit on, the app it acts in ("" for a
    method of the user), and the key's scopes (None: every scope)."""

    key: str
    app_id: str
    scopes: tuple[str, ...] | None
    personal: bool
    """A personal access token (else an app key)."""


def authenticate(
    options: SandboxOptions,
    method: str,
    request: Any,
    metadata: Any,
    reply: Any,
    of_user: bool = False,
) -> Caller | None:
    """Who calls, or None after writing the refusal into ``reply``.

    ``metadata`` is the call's invocation metadata (``(name, value)`` pairs); ``of_user``
    says the method acts on the user (PostApps, ListApps), not inside an app. Whether the
    app named exists is the caller's to check (:func:`app_not_found`).
    """
    token = ""
    for name, value in metadata or ():
        if name == "authorization" and value.startswith("Key "):
            token = value[4:]
    user_app = getattr(request, "user_app_id", None)
    if token in options.pats:
        if user_app is None or not user_app.user_id or not (of_user or user_app.app_id):
            set_status(
                reply.status,
                sc.CONN_KEY_INVALID,
                KEY_INVALID,
                "Must provide app external ID in API authorizer",
            )
            return None
        user_id = options.user_id if user_app.user_id == ME else user_app.user_id
        if user_id != options.user_id:
            if of_user:
                set_status(
                    reply.status,
                    sc.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"user identified by path /users/{user_app.user_id} not found",
                )
            else:
                app_not_found(reply, user_app.user_id, user_app.app_id)
            return None
        return Caller(token, "" if of_user else user_app.app_id, None, True)
    scopes: tuple[str, ...] | None
    if token in options.api_keys:
        scopes = None
    elif token in options.scoped_keys:
        scopes = tuple(options.scoped_keys[token])
    else:
        set_status(reply.status, sc.CONN_KEY_INVALID, KEY_INVALID)
        return None
    needed = SCOPES.get(method, "")
    # an app key acts inside its app: of the user's methods it may only list (its app)
    if (of_user and method not in APP_KEY_USER_METHODS) or (
        scopes is not None and needed and needed not in scopes
    ):
        set_status(
            reply.status,
            sc.CONN_INSUFFICIENT_SCOPES,
            "API key has insufficient scopes",
            f"Missing scope(s): {needed}",
        )
        return None
    return Caller(token, options.app_id, scopes, False)


def app_not_found(reply: Any, user_id: str, app_id: str) -> None:
    """The refusal for a path naming an app that does not exist (or no longer does)."""
    set_status(
        reply.status,
        sc.CONN_DOES_NOT_EXIST,
        "Resource does not exist",
        f"app identified by path /users/{user_id}/apps/{app_id} not found",
    )
