"""Box annotations encoded straight to protobuf's wire format.

A PostAnnotations call carries up to 128 annotations that differ from each other only
in their two ids, four floats and a label set; building each through the message API
costs a dozen attribute calls per box. Here an annotation is a few byte strings
joined: each concept is written once and kept, each label set is its concepts joined
once and kept, the box is one ``struct`` pack. The request is then parsed from those
bytes in one call (:func:`annotations_request`), so it is an ordinary message and what
goes on the wire is protobuf's own serialisation of it. Tags come from the descriptors,
and ``tests/test_wire.py`` checks the result against messages built field by field.

Polygon regions and ``annotation_info`` are rarer: protobuf serialises those parts
(a ``RegionInfo`` with ``polygon.points``, a ``Struct``), which are joined in the same
way. A concept's ``name`` is the row's ``concept_names`` entry, else its id.

Replies are read lightly where only their statuses count (:data:`LIGHT_REPLIES`): a
``PostInputs`` or ``PostAnnotations`` reply sends every item back whole (an input's data,
an annotation's regions and concepts), and parsing all of it to read one status per item
costs more than the call's own request. Their light message types have the replies'
field numbers for the statuses and the items' ids and statuses only; the rest of each
item stays unparsed bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

from ingest.model import Row

__all__ = ["LIGHT_REPLIES", "AnnotationEncoder", "annotations_request"]

_LEN = 2  # wire type of strings and messages
_FIXED32 = 5  # wire type of floats


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_varint(n) for n in range(256)]


def _size(n: int) -> bytes:
    """The varint of a length (cached below 256, the usual case)."""
    return _SMALL[n] if n < 256 else _varint(n)


def _tag(message: Any, name: str, wire_type: int) -> bytes:
    return _varint(message.DESCRIPTOR.fields_by_name[name].number << 3 | wire_type)


_ANNOTATION = _tag(service_pb2.PostAnnotationsRequest, "annotations", _LEN)
_ID = _tag(resources_pb2.Annotation, "id", _LEN)
_INPUT_ID = _tag(resources_pb2.Annotation, "input_id", _LEN)
_DATA = _tag(resources_pb2.Annotation, "data", _LEN)
_REGIONS = _tag(resources_pb2.Data, "regions", _LEN)
_REGION_DATA = _tag(resources_pb2.Region, "data", _LEN)
_REGION_INFO = _tag(resources_pb2.Region, "region_info", _LEN)
_ANNOTATION_INFO = _tag(resources_pb2.Annotation, "annotation_info", _LEN)

# RegionInfo{bounding_box: BoundingBox{left_col, top_row, right_col, bottom_row}},
# all four floats always written (a zero parses to the same message).
_box = resources_pb2.BoundingBox
_BOX_TAGS = [_tag(_box, f, _FIXED32) for f in ("left_col", "top_row", "right_col", "bottom_row")]
assert all(len(t) == 1 for t in _BOX_TAGS)
_pack_box = struct.Struct("<" + "cf" * 4).pack
_B0, _B1, _B2, _B3 = _BOX_TAGS
_BOX_LEN = 4 * (1 + 4)
_BOUNDING_BOX = _tag(resources_pb2.RegionInfo, "bounding_box", _LEN) + _size(_BOX_LEN)
_INFO_PREFIX = (
    _tag(resources_pb2.Region, "region_info", _LEN)
    + _size(len(_BOUNDING_BOX) + _BOX_LEN)
    + _BOUNDING_BOX
)


# Data{concepts: Concept{id, name, value}}
_DATA_CONCEPT = _tag(resources_pb2.Data, "concepts", _LEN)
_CONCEPT_ID = _tag(resources_pb2.Concept, "id", _LEN)
_CONCEPT_NAME = _tag(resources_pb2.Concept, "name", _LEN)
_CONCEPT_VALUE = _tag(resources_pb2.Concept, "value", _FIXED32)
_pack_float = struct.Struct("<f").pack


class AnnotationEncoder:
    """Encodes box rows as ``PostAnnotationsRequest.annotations`` entries.

    Keeps the encoded concepts of up to ``limit`` label sets and ``limit`` concepts (a few
    dozen bytes each).
    """

    def __init__(self, limit: int = 16384) -> None:
        self._labels: dict[tuple[object, ...], bytes] = {}
        self._limit = limit
        self._heads: dict[int, bytes] = {}
        self._concepts: dict[tuple[str, float, str], bytes] = {}

    def _region_data(
        self,
        pos: tuple[str, ...],
        neg: tuple[str, ...],
        names: Mapping[str, str] | None = None,
    ) -> bytes:
        # a source's rows share one names mapping, in which an id's name never changes
        key: tuple[object, ...] = (pos, neg, id(names)) if names else (pos, neg)
        got = self._labels.get(key)
        if got is None:
            concept = self._concept
            body = b"".join(
                [concept(c, 1.0, names.get(c, c) if names else c) for c in pos]
                + [concept(c, 0.0, names.get(c, c) if names else c) for c in neg]
            )
            got = _REGION_DATA + _size(len(body)) + body if body else b""
            if len(self._labels) < self._limit:
                self._labels[key] = got
        return got

    def _concept(self, concept: str, value: float, name: str) -> bytes:
        """One ``Data.concepts`` entry (each written once, then kept)."""
        key = (concept, value, name)
        got = self._concepts.get(key)
        if got is None:
            body = (
                _CONCEPT_ID
                + _size(len(raw := concept.encode()))
                + raw
                + _CONCEPT_NAME
                + _size(len(text := name.encode()))
                + text
                + _CONCEPT_VALUE
                + _pack_float(value)
            )
            got = _DATA_CONCEPT + _size(len(body)) + body
            if len(self._concepts) < self._limit:
                self._concepts[key] = got
        return got

    def encode(self, rows: Iterable[Row]) -> bytes:
        """The ``annotations`` field of a request holding one annotation per row.

        Every row must have a region (``coords`` or ``polygon``) and an annotation id.
        A box annotation is six byte strings: its header, its id, its input (the same
        for an image's rows), the part before the box (the same for every label set of
        one length), the four floats and the labels.
        """
        parts: list[bytes] = []
        add = parts.extend
        labels = self._labels
        region_data = self._region_data
        heads = self._heads
        small = _SMALL
        last_iid: str | None = None
        input_part = b""
        for row in rows:
            pos, neg, names = row.pos_concepts, row.neg_concepts, row.concept_names
            rd = labels.get((pos, neg, id(names)) if names else (pos, neg))
            if rd is None:
                rd = region_data(pos, neg, names)
            iid = row.input_id
            if iid is not last_iid:
                last_iid = iid
                raw = iid.encode()
                input_part = _INPUT_ID + _size(len(raw)) + raw
            aid = row.annotation_id.encode()
            n = len(aid)
            id_part = _ID + (small[n] if n < 256 else _varint(n)) + aid
            coords = row.coords
            if coords is not None and not row.info:
                head = heads.get(len(rd)) or self._head(len(rd))
                left, top, right, bottom = coords
                box = _pack_box(_B0, left, _B1, top, _B2, right, _B3, bottom)
                n = len(id_part) + len(input_part) + len(head) + _BOX_LEN + len(rd)
                tag = _ANNOTATION + (small[n] if n < 256 else _varint(n))
                add((tag, id_part, input_part, head, box, rd))
                continue
            if coords is not None:
                left, top, right, bottom = coords
                where = _INFO_PREFIX + _pack_box(_B0, left, _B1, top, _B2, right, _B3, bottom)
            else:
                assert row.polygon is not None
                info = _polygon_info(row.polygon)
                where = _REGION_INFO + _size(len(info)) + info
            region = where + rd
            data = _REGIONS + _size(len(region)) + region
            ann = id_part + input_part + _DATA + _size(len(data)) + data
            if row.info:
                body = _struct(row.info)
                ann += _ANNOTATION_INFO + _size(len(body)) + body
            add((_ANNOTATION + _size(len(ann)), ann))
        return b"".join(parts)

    def _head(self, labels: int) -> bytes:
        """What comes between a box annotation's input id and its floats, for labels of
        ``labels`` bytes: the data's tag and size, the region's, the region info's."""
        region = len(_INFO_PREFIX) + _BOX_LEN + labels
        data = len(_REGIONS) + len(_size(region)) + region
        head = _DATA + _size(data) + _REGIONS + _size(region) + _INFO_PREFIX
        self._heads[labels] = head
        return head


_pack_double = struct.Struct("<d").pack


def _struct(values: Mapping[str, Any]) -> bytes:
    """A serialised ``Struct``: flat numbers, strings, booleans and nulls by hand, the
    rest through protobuf."""
    parts: list[bytes] = []
    for key, value in values.items():
        if value is None:
            encoded = b"\x08\x00"  # null_value
        elif isinstance(value, bool):
            encoded = b"\x20\x01" if value else b"\x20\x00"  # bool_value
        elif isinstance(value, (int, float)):
            encoded = b"\x11" + _pack_double(float(value))  # number_value
        elif isinstance(value, str):
            text = value.encode()
            encoded = b"\x1a" + _size(len(text)) + text  # string_value
        else:
            message = struct_pb2.Struct()
            message.update(values)
            return bytes(message.SerializeToString())
        name = key.encode()
        entry = b"\x0a" + _size(len(name)) + name + b"\x12" + _size(len(encoded)) + encoded
        parts.append(b"\x0a" + _size(len(entry)) + entry)
    return b"".join(parts)


def _polygon_info(points: tuple[float, ...]) -> bytes:
    """A serialised ``RegionInfo`` holding a polygon of flat ``x, y`` points."""
    info = resources_pb2.RegionInfo()
    add = info.polygon.points.add
    for i in range(0, len(points) - 1, 2):
        add(row=points[i + 1], col=points[i])
    return bytes(info.SerializeToString())


def annotations_request(encoded: bytes) -> Any:
    """A ``PostAnnotationsRequest`` holding the annotations of :meth:`AnnotationEncoder.encode`."""
    request = service_pb2.PostAnnotationsRequest()
    request.MergeFromString(encoded)
    return request


def _light_replies() -> dict[str, tuple[Any, Any]]:
    """Method -> (request class, light reply class) for the replies read for statuses."""
    field = descriptor_pb2.FieldDescriptorProto
    status = "." + status_pb2.Status.DESCRIPTOR.full_name
    name = "ingest/light_replies.proto"
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(name)
    except KeyError:
        proto = descriptor_pb2.FileDescriptorProto(
            name=name, package="ingest.light", syntax="proto3"
        )
        proto.dependency.append(status_pb2.DESCRIPTOR.name)
        shapes = (
            (service_pb2.MultiInputResponse, "inputs", resources_pb2.Input),
            (service_pb2.MultiAnnotationResponse, "annotations", resources_pb2.Annotation),
        )
        for reply, items, item in shapes:
            fields = item.DESCRIPTOR.fields_by_name
            entry = proto.message_type.add(name=item.DESCRIPTOR.name)
            entry.field.add(name="id", number=fields["id"].number, type=field.TYPE_STRING)
            entry.field.add(
                name="status",
                number=fields["status"].number,
                type=field.TYPE_MESSAGE,
                type_name=status,
            )
            whole = reply.DESCRIPTOR.fields_by_name
            lean = proto.message_type.add(name=reply.DESCRIPTOR.name)
            lean.field.add(
                name="status",
                number=whole["status"].number,
                type=field.TYPE_MESSAGE,
                type_name=status,
            )
            lean.field.add(
                name=items,
                number=whole[items].number,
                type=field.TYPE_MESSAGE,
                label=field.LABEL_REPEATED,
                type_name=f".ingest.light.{item.DESCRIPTOR.name}",
            )
        pool.Add(proto)

    def light(reply: Any) -> Any:
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"ingest.light.{reply.DESCRIPTOR.name}")
        )

    return {
        "PostInputs": (service_pb2.PostInputsRequest, light(service_pb2.MultiInputResponse)),
        "PostAnnotations": (
            service_pb2.PostAnnotationsRequest,
            light(service_pb2.MultiAnnotationResponse),
        ),
    }


LIGHT_REPLIES = _light_replies()
"""``method -> (request class, light reply class)``: the calls whose replies are read for
their statuses, the items' ids and statuses only."""
