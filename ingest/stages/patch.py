"""Complete existing inputs: only the labels and metadata they lack, never twice.

An input can exist before its rows are sent: an earlier run, a failures file fed
back, rows of one URL that reached the service in two stretches. The processing
check reads what the service holds for it (``ListInputs`` returns the input's
concepts and metadata); :func:`label_patch` compares that with what the rows carry and
this stage sends the difference, up to 128 inputs per call:

* concepts missing or with another value go in a ``merge`` (concepts are a list of
  objects with ids, which ``merge`` updates by id: sending one again changes nothing);
* metadata keys missing or different go in an ``overwrite`` holding each such key's
  whole final value: Clarifai's ``merge`` *appends* to lists ("For non-id lists, merge
  will append", docs "Patching"), so a list sent again by merge would grow each time.
  A final value keeps the stored keys of a nested object the rows do not name.

When nothing differs, nothing is sent. Repeating any of it leaves the service as
it was; a change made to the same input by someone else between the check and the
patch can be overwritten for the keys the rows name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from google.protobuf import json_format

from ingest.batching import Batcher
from ingest.client import describe, is_retryable
from ingest.model import Image, Row, Status
from ingest.ratelimit import Priority
from ingest.stages.base import WorkerContext
from ingest.stages.create import add_concept, labels_of, settle

__all__ = ["LabelPatch", "label_patch", "patch_worker"]


@dataclass(slots=True)
class LabelPatch:
    """What one existing input lacks, and the image-level rows waiting for it."""

    input_id: str
    rows: list[Row]
    concepts: list[tuple[str, float, str]]
    """Concepts to merge: (id, value, name)."""
    metadata: dict[str, Any]
    """Top-level metadata keys to overwrite, with their whole final values."""

    def absorb(self, later: LabelPatch) -> None:
        """Take in a later patch of the same input (rows of it that came in another
        stretch), as one stretch of all their rows would have been: a concept keeps the
        value its first row gave, metadata settles the later over the earlier."""
        self.rows += later.rows
        known = {concept for concept, _, _ in self.concepts}
        self.concepts += [c for c in later.concepts if c[0] not in known]
        for key, value in later.metadata.items():
            self.metadata[key] = settle(self.metadata.get(key), value)


def label_patch(image: Image, stored: Any) -> LabelPatch | None:
    """What ``image``'s rows carry that the stored input (``stored.data``) lacks, if any."""
    concepts, metadata = labels_of(image)
    if not concepts and not metadata:
        return None
    have = {c.id: c.value for c in stored.data.concepts}
    missing = [(cid, v, name) for cid, (v, name) in concepts.items() if have.get(cid) != v]
    changed: dict[str, Any] = {}
    if metadata:
        held = json_format.MessageToDict(stored.data.metadata)
        for key, value in metadata.items():
            final = settle(held.get(key), value)
            if key not in held or held[key] != final:
                changed[key] = final
    if not missing and not changed:
        return None
    rows = [row for row in image.rows if not row.annotation_id]
    return LabelPatch(image.input_id, rows, missing, changed)


async def patch_worker(stage: WorkerContext, batcher: Batcher[LabelPatch]) -> None:
    """Send batches of patches until the stage's stream ends."""
    async with stage.outcomes:
        while (batch := await batcher.next_batch()) is not None:
            todo: dict[str, LabelPatch] = {}
            for patch in batch:  # one input may have several: one per stretch of its rows
                if patch.input_id in todo:
                    todo[patch.input_id].absorb(patch)
                else:
                    todo[patch.input_id] = patch
            failed: dict[str, str] = {}
            merge = [p for p in todo.values() if p.concepts]
            overwrite = [p for p in todo.values() if p.metadata]
            if merge:
                failed.update(await _send(stage, "merge", merge))
            if overwrite:
                ok = [p for p in overwrite if p.input_id not in failed]
                failed.update(await _send(stage, "overwrite", ok))
            for patch in todo.values():
                error = failed.get(patch.input_id)
                if error is None:
                    stage.report.inputs_patched += 1
                    stage.finish_all(patch.rows, Status.LANDED)
                else:
                    stage.report.inputs_failed += 1
                    stage.fail_rows(
                        patch.rows,
                        "the input exists but its labels and metadata could not be added: " + error,
                    )
            await stage.flush()


def _request(action: str, patches: list[LabelPatch]) -> Any:
    request = service_pb2.PatchInputsRequest(action=action)
    for patch in patches:
        target = request.inputs.add()
        target.id = patch.input_id
        if action == "merge":
            for concept, value, name in patch.concepts:
                add_concept(target.data, concept, value, name)
        else:
            target.data.metadata.update(patch.metadata)
    return request


async def _send(stage: WorkerContext, action: str, patches: list[LabelPatch]) -> dict[str, str]:
    """Send ``patches`` with ``action``, retrying items that may succeed; the failures."""
    failed: dict[str, str] = {}
    attempt = 0
    while patches:
        reply = await stage.client.call(
            "PatchInputs", _request(action, patches), priority=Priority.CREATE
        )
        if reply.status.code == sc.SUCCESS:
            return failed
        statuses = {inp.id: inp.status for inp in reply.inputs}
        again: list[LabelPatch] = []
        for patch in patches:
            status = statuses.get(patch.input_id, reply.status)
            if status.code == sc.SUCCESS:
                continue
            if is_retryable(status.code) and attempt + 1 < stage.config.max_attempts:
                again.append(patch)
            else:
                failed[patch.input_id] = describe(status)
        patches = again
        if patches:
            attempt += 1
            stage.client.stats.retries += 1
            await stage.client.backoff(attempt)
    return failed
