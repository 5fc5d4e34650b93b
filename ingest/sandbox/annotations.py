"""An app's annotations: posted, listed, patched and deleted.

Two kinds are stored: the input-level annotation PostInputs makes from an input's
concepts (``AppState.input_annotations``), and those PostAnnotations makes
(``AppState.annotations``). ListAnnotations and DeleteAnnotations treat both alike, as
the proto describes them ("all the annotations for 'input_ids'", "all the annotations in
the app"). Where each behaviour comes from is listed in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import json_format

from ingest.sandbox.checks import annotation_refused, data_refused, too_many
from ingest.sandbox.patching import ACTIONS, patch_data, patch_json
from ingest.sandbox.replies import overall, page_of, set_status, unknown_action
from ingest.sandbox.rpc import ServicerBase, rpc
from ingest.sandbox.state import AppState

__all__ = ["AnnotationRPCs", "concepts_of"]


def concepts_of(data: Any) -> Iterator[Any]:
    """The concepts an annotation's data names, its regions' included."""
    yield from data.concepts
    for region in data.regions:
        yield from region.data.concepts


def _ann_id(ann: Any) -> str:
    return ann if isinstance(ann, str) else str(ann.id)


def _all_of(state: AppState, input_ids: Iterable[str]) -> Iterator[tuple[dict[str, Any], str]]:
    """``(store, key)`` of every annotation of these inputs: input-level first."""
    for input_id in input_ids:
        if input_id in state.input_annotations:
            yield state.input_annotations, input_id
        for ann_id in state.by_input.get(input_id, ()):
            yield state.annotations, ann_id


def _patched(stored: Any, given: Any, action: str) -> Any:
    """A copy of annotation ``stored`` with ``given``'s data patched in by ``action``.

    ``overwrite`` replaces the data; ``merge`` merges concepts by id and
    metadata-like structs key by key, and a region given replaces the stored one (an
    annotation holds one region, and the SDK's own test reads the new box first after a
    merge: tests/test_data_upload.py, test_patch_annotations); ``remove`` deletes the
    concepts named and the struct keys given.
    """
    out = resources_pb2.Annotation()
    out.CopyFrom(stored)
    data, patch = out.data, given.data
    if action == "overwrite":
        data.CopyFrom(patch)
    else:
        patch_data(data, patch, action)  # concepts by id, metadata as in "Patching"
        if patch.regions:
            del data.regions[:]
            if action == "merge":
                data.regions.extend(patch.regions)
    if given.HasField("annotation_info"):
        merged = patch_json(
            json_format.MessageToDict(out.annotation_info),
            json_format.MessageToDict(given.annotation_info),
            "overwrite" if action == "overwrite" else action,
        )
        out.annotation_info.Clear()
        out.annotation_info.update(merged)
    out.modified_at.GetCurrentTime()
    return out


class AnnotationRPCs(ServicerBase):
    """PostAnnotations, ListAnnotations, PatchAnnotations, DeleteAnnotations."""

    @rpc(service_pb2.MultiAnnotationResponse)
    def PostAnnotations(self, state: AppState, request: Any, reply: Any) -> None:
        if too_many(reply, request.annotations, "annotations"):
            self.stats.annotations_rejected += len(request.annotations)
            return
        now = time.monotonic()
        ok = 0
        for given in request.annotations:
            item = reply.annotations.add()
            item.CopyFrom(given)
            if annotation_refused(state, given, now, item):
                self.stats.annotations_rejected += 1
                continue
            item.created_at.GetCurrentTime()
            item.modified_at.CopyFrom(item.created_at)
            state.add_annotation(item)
            state.remember_concepts(concepts_of(item.data))
            set_status(item.status, sc.ANNOTATION_SUCCESS, "Annotation success")
            self.stats.annotations_stored += 1
            ok += 1
        overall(reply, ok, len(request.annotations))

    @rpc(service_pb2.MultiAnnotationResponse)
    def ListAnnotations(self, state: AppState, request: Any, reply: Any) -> None:
        """By ``ids``, by ``input_ids`` (all of each input's), or all of the app's."""
        chosen: Iterable[tuple[dict[str, Any], str]]
        if request.ids:
            level = state.input_annotations
            chosen = (
                (level, state.level_ids[i]) if i in state.level_ids else (state.annotations, i)
                for i in dict.fromkeys(request.ids)
                if i in state.level_ids or i in state.annotations
            )
        elif request.input_ids:
            chosen = _all_of(state, dict.fromkeys(request.input_ids))
        else:
            chosen = itertools.chain(
                ((state.input_annotations, i) for i in state.input_annotations),
                ((state.annotations, a) for a in state.annotations),
            )
        for store, key in page_of(chosen, request):
            ann = store[key]
            if isinstance(ann, str):
                reply.annotations.add(id=ann)
            else:
                reply.annotations.append(ann)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiAnnotationResponse)
    def PatchAnnotations(self, state: AppState, request: Any, reply: Any) -> None:
        action = request.action or "merge"
        if unknown_action(reply, action, ACTIONS):
            return
        if too_many(reply, request.annotations, "annotations"):
            return
        ok = 0
        for given in request.annotations:
            item = reply.annotations.add()
            item.CopyFrom(given)
            input_id = state.level_ids.get(given.id)
            store, key = (
                (state.input_annotations, input_id)
                if input_id is not None
                else (state.annotations, given.id)
            )
            stored = store.get(key)
            if stored is None or isinstance(stored, str):
                set_status(
                    item.status,
                    sc.ANNOTATION_INVALID_ARGUMENT,
                    "Annotation does not exist",
                    f"annotation {given.id!r} not found",
                )
                continue
            patched = _patched(stored, given, action)
            if input_id is None and data_refused(item.status, patched.data):
                continue
            if (
                action == "remove"
                and request.delete_if_empty_data
                and not patched.data.ListFields()
            ):
                state.delete_annotation(given.id)
            else:
                store[key] = patched
                state.remember_concepts(concepts_of(patched.data))
            item.CopyFrom(patched)
            set_status(item.status, sc.ANNOTATION_SUCCESS, "Annotation success")
            ok += 1
        overall(reply, ok, len(request.annotations))

    @rpc(status_pb2.BaseResponse)
    def DeleteAnnotations(self, state: AppState, request: Any, reply: Any) -> None:
        """By ``ids`` (paired with ``input_ids``), or every annotation of ``input_ids``."""
        if not request.input_ids:
            set_status(
                reply.status,
                sc.CONN_INVALID_REQUEST,
                "Invalid request",
                "input_ids must name at least one input",
            )
            return
        if request.ids:
            gone = list(request.ids)
        else:
            gone = [_ann_id(store[key]) for store, key in _all_of(state, request.input_ids)]
        for ann_id in gone:
            state.delete_annotation(ann_id)
        set_status(reply.status, sc.SUCCESS, "Ok")
