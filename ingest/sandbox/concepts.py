"""An app's concepts: made on first use (an input's or an annotation's concepts, or
PostConcepts), listed, got and patched. They outlive the inputs that named them.

A ``Concept`` carries no status of its own, so a call over several concepts fails whole
when one of them cannot be served. Where each behaviour comes from is listed in
``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.checks import concept_id_problem
from ingest.sandbox.replies import page_of, set_status, unknown_action
from ingest.sandbox.rpc import ServicerBase, rpc
from ingest.sandbox.state import AppState

__all__ = ["ConceptRPCs"]


def _missing(state: AppState, concept_id: str, reply: Any) -> bool:
    """True (and the reply says so) when the app has no concept ``concept_id``."""
    if concept_id in state.concepts:
        return False
    set_status(
        reply.status,
        sc.CONN_DOES_NOT_EXIST,
        "Resource does not exist",
        f"concept {concept_id!r} not found",
    )
    return True


class ConceptRPCs(ServicerBase):
    """PostConcepts, ListConcepts, GetConcept, PatchConcepts."""

    @rpc(service_pb2.MultiConceptResponse)
    def PostConcepts(self, state: AppState, request: Any, reply: Any) -> None:
        for given in request.concepts:
            problem = concept_id_problem(given.id)
            if problem is not None:
                set_status(reply.status, sc.CONN_INVALID_REQUEST, "Invalid request", problem)
                return
            if given.id in state.concepts:
                set_status(
                    reply.status,
                    sc.DATABASE_DUPLICATE_KEY,
                    "Concept already exists",
                    f"a concept with id {given.id!r} already exists in the app",
                )
                return
        state.remember_concepts(request.concepts)
        reply.concepts.extend(state.concepts[given.id] for given in request.concepts)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiConceptResponse)
    def ListConcepts(self, state: AppState, request: Any, reply: Any) -> None:
        reply.concepts.extend(page_of(state.concepts.values(), request))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.SingleConceptResponse)
    def GetConcept(self, state: AppState, request: Any, reply: Any) -> None:
        if _missing(state, request.concept_id, reply):
            return
        reply.concept.CopyFrom(state.concepts[request.concept_id])
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiConceptResponse)
    def PatchConcepts(self, state: AppState, request: Any, reply: Any) -> None:
        """Action ``overwrite`` only ("For now ony action 'overwrite' is supported"): the
        name (and any other field given) replaces the stored one."""
        if unknown_action(reply, request.action or "overwrite", ("overwrite",)):
            return
        for given in request.concepts:
            if _missing(state, given.id, reply):
                return
        for given in request.concepts:
            stored = state.concepts[given.id]
            for field, value in given.ListFields():
                if field.name not in ("id", "app_id", "created_at", "value"):
                    if field.message_type is not None:
                        getattr(stored, field.name).CopyFrom(value)
                    else:
                        setattr(stored, field.name, value)
            reply.concepts.append(stored)
        set_status(reply.status, sc.SUCCESS, "Ok")
