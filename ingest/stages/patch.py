"""Complete existing inputs: only the labels and metadata they lack, never twice.

An input can exist before its rows are sent: an earlier run, a failures file fed
back, rows of one URL that reached the service in two stretches. The processing
check reads what the service holds for it (``ListInputs`` returns the input's
concepts and metadata); :func:`label_patch` compares that with what the rows carry and
this stage sends the difference, up to 128 inputs per call. The aim: the input ends as
one clean run of the rows would have left it, whichever of the readings of PatchInputs
``overwrite`` the service follows (docs/clarifai-behaviour.md, "PatchInputs overwrite"):
it may replace the value of each top-level key it names, replace the whole metadata, or
merge nested objects.

Metadata. The rows of an input combine as in a clean run (:func:`~.create.labels_of`:
a later row's object settles over an earlier one's). Each top-level key the rows name
takes exactly the rows' value, at any depth: a key the data dropped inside an object is
gone. A top-level key the rows do not name keeps its stored value: ingest cannot tell
a key another tool added from one an earlier version of the data had, and keeps both.
To get there under every reading, the input's final metadata is sent whole in an
``overwrite`` (so a reading that replaces everything loses nothing), after a ``remove``
of the top-level keys whose stored object holds keys the final one lacks (which a
merging reading would keep); the ``remove`` is sent only when there are such keys.
``merge`` is never used for metadata: it appends to lists ("For non-id lists, merge
will append", docs "Patching"), so a list sent again would grow each time.

Concepts. Concepts missing, or with another value, go in a ``merge`` (concepts are a
list of objects with ids, which ``merge`` updates by id: sending one again changes
nothing). When the metadata is overwritten, the input's whole final concept list goes
in that ``overwrite`` too: the page's own example of an input overwrite replaces the
whole data object (what was not sent is gone), and the concepts must survive it.

A later stretch of the same input within one run (rows from an iterable) continues
from what the earlier stretches stored, as the rest of one clean run would: its rows
settle over the stored metadata, and a concept already stored keeps its value (the
first row naming a concept decides). The stretches go one at a time
(:class:`~.base.Turns`), so each reads what the one before it left.

Geo. An input's geo point (``data.geo``, the ``geo`` column) the stored input lacks, or
holds with other coordinates (compared as the float32 the service keeps), goes in the
``merge``; every ``overwrite`` carries the input's geo point (the rows', else the stored
one), since the page's input overwrite loses a ``geo`` it was not sent. A later stretch
keeps a stored geo point (the first row giving one decides).

When nothing differs, nothing is sent. Repeating any of it leaves the service as it
was; a change made to the same input by someone else between the check and the patch
can be overwritten for the keys the rows name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from google.protobuf import json_format

from ingest.batching import Batcher
from ingest.client import describe
from ingest.model import Image, Row, Status
from ingest.ratelimit import Priority
from ingest.stages.base import WorkerContext
from ingest.stages.create import (
    add_concept,
    fold_metadata,
    geo_of,
    labels_of,
    set_geo,
    settle,
)

__all__ = ["LabelPatch", "label_patch", "patch_worker"]

Concept = tuple[str, float, str]
"""(id, value, name)"""

Geo = tuple[float, float]
"""(longitude, latitude)"""


@dataclass(slots=True)
class LabelPatch:
    """What one existing input lacks, and the image-level rows waiting for it."""

    image: Image
    concepts: list[Concept]
    """Concepts the input lacks (or holds with another value): merged."""
    metadata: dict[str, Any] | None = None
    """The whole metadata the input must hold (overwritten), or None when it holds it."""
    remove: list[str] = field(default_factory=list)
    """Top-level keys to remove before the overwrite: their stored objects hold keys the
    final ones lack."""
    keep: list[Concept] = field(default_factory=list)
    """Every concept the input must hold, sent again with the overwrite."""
    geo: Geo | None = None
    """A geo point the input lacks (or holds another): merged."""
    keep_geo: Geo | None = None
    """The geo point the input must hold, sent again with the overwrite."""

    @property
    def input_id(self) -> str:
        return self.image.input_id

    def needs(self, action: str) -> bool:
        """Whether this patch sends anything with PatchInputs ``action``."""
        if action == "merge":
            return bool(self.concepts) or self.geo is not None
        if action == "remove":
            return bool(self.remove)
        return self.metadata is not None

    @property
    def rows(self) -> list[Row]:
        """The image-level rows that end with this patch."""
        return [row for row in self.image.rows if not row.annotation_id]


def label_patch(image: Image, stored: Any) -> LabelPatch | None:
    """What ``image``'s rows carry that the stored input (``stored.data``) lacks, if any."""
    concepts, metadata = labels_of(image)
    geo = geo_of(image)
    if not concepts and not metadata and geo is None:
        return None
    held_geo = _stored_geo(stored)
    if geo is not None and (_float32(geo) == held_geo or (image.continued and held_geo)):
        geo = None  # held already (or a stored one an earlier stretch gave)
    have = {c.id: c.value for c in stored.data.concepts}
    if image.continued:  # a concept stored by an earlier stretch keeps its value
        missing = [(cid, v, name) for cid, (v, name) in concepts.items() if cid not in have]
    else:
        missing = [(cid, v, name) for cid, (v, name) in concepts.items() if have.get(cid) != v]
    final: dict[str, Any] | None = None
    remove: list[str] = []
    if metadata:
        held = json_format.MessageToDict(stored.data.metadata)
        # a later stretch continues from what the earlier ones stored; a first one sets
        # each key its rows name to exactly their value
        final = fold_metadata(image.rows, held) if image.continued else {**held, **metadata}
        if final == held:
            final = None
        else:
            remove = [
                key
                for key, value in final.items()
                if isinstance(held.get(key), dict) and settle(held[key], value) != value
            ]
    if not missing and final is None and geo is None:
        return None
    if final is None:
        return LabelPatch(image, missing, geo=geo)
    # the overwrite carries every concept: the stored ones (with the rows' values) and new
    given = {cid: (cid, v, name) for cid, v, name in missing}
    keep = [given.pop(c.id, (c.id, c.value, c.name)) for c in stored.data.concepts]
    keep_geo = geo or held_geo
    return LabelPatch(image, missing, final, remove, keep + list(given.values()), geo, keep_geo)


_pack_float32 = struct.Struct("<ff")


def _float32(geo: Geo) -> Geo:
    """``geo`` as the service stores it (``GeoPoint`` holds float32)."""
    longitude, latitude = _pack_float32.unpack(_pack_float32.pack(*geo))
    return longitude, latitude


def _stored_geo(stored: Any) -> Geo | None:
    data = stored.data
    if not data.HasField("geo") or not data.geo.HasField("geo_point"):
        return None
    point = data.geo.geo_point
    return point.longitude, point.latitude


async def patch_worker(stage: WorkerContext, batcher: Batcher[LabelPatch]) -> None:
    """Send batches of patches until the stage's stream ends."""
    async with stage.outcomes:
        while (batch := await batcher.next_batch()) is not None:
            failed: dict[str, str] = {}
            for action in ("merge", "remove", "overwrite"):
                todo = [p for p in batch if p.input_id not in failed and p.needs(action)]
                if todo:
                    failed.update(await _send(stage, action, todo))
            tally = stage.tallies.patch
            for patch in batch:
                error = failed.get(patch.input_id)
                if error is None:
                    tally.new += 1
                    stage.finish_all(patch.rows, Status.LANDED)
                else:
                    tally.failed += 1
                    stage.fail_rows(
                        patch.rows,
                        "the input exists but its labels and metadata could not be added: " + error,
                    )
                stage.settled(patch.image)
            await stage.flush()


def _request(action: str, patches: list[LabelPatch]) -> Any:
    request = service_pb2.PatchInputsRequest(action=action)
    for patch in patches:
        target = request.inputs.add()
        target.id = patch.input_id
        if action == "merge":
            for concept, value, name in patch.concepts:
                add_concept(target.data, concept, value, name)
            set_geo(target.data, patch.geo)
        elif action == "remove":
            target.data.metadata.update(dict.fromkeys(patch.remove, True))
        else:
            for concept, value, name in patch.keep:
                add_concept(target.data, concept, value, name)
            target.data.metadata.update(patch.metadata or {})
            set_geo(target.data, patch.keep_geo)
    return request


async def _send(stage: WorkerContext, action: str, patches: list[LabelPatch]) -> dict[str, str]:
    """Send ``patches`` with ``action`` (the client retries what may succeed); the failures."""
    verdicts = await stage.client.call_items(
        "PatchInputs", _request(action, patches), priority=Priority.CREATE
    )
    if verdicts.ok:
        return {}
    return {
        patch.input_id: describe(status)
        for patch, status in zip(patches, verdicts.statuses, strict=True)
        if status.code != sc.SUCCESS
    }
