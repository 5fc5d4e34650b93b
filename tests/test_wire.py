"""The hand-encoded annotations are the messages the protobuf API would build."""

from __future__ import annotations

from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.model import Row
from ingest.wire import AnnotationEncoder, annotations_request

ids = st.text(alphabet="abcdefABCDEF0123456789_-", min_size=1, max_size=128)
concepts = st.lists(ids, max_size=40, unique=True).map(tuple)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, width=64)


@st.composite
def rows(draw: st.DrawFn) -> Row:
    pos = draw(concepts)
    neg = tuple(c for c in draw(concepts) if c not in pos)
    coords = (draw(unit), draw(unit), draw(unit), draw(unit))
    return Row(draw(st.integers(2, 10**7)), draw(ids), "u", "", coords, draw(ids), pos, neg)


def built(rows: list[Row]) -> Any:
    """The request built field by field through the message API."""
    request = service_pb2.PostAnnotationsRequest()
    for row in rows:
        assert row.coords is not None
        ann = request.annotations.add()
        ann.id = row.annotation_id
        ann.input_id = row.input_id
        region = ann.data.regions.add()
        bb = region.region_info.bounding_box
        bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = row.coords
        for names, value in ((row.pos_concepts, 1.0), (row.neg_concepts, 0.0)):
            for name in names:
                c = region.data.concepts.add()
                c.id = name
                c.name = name
                c.value = value
    return request


@settings(max_examples=200, deadline=None)
@given(st.lists(rows(), max_size=20))
def test_encoded_requests_equal_built_ones_byte_for_byte(batch: list[Row]) -> None:
    expected = built(batch)
    got = annotations_request(AnnotationEncoder().encode(batch))
    assert got == expected
    assert got.SerializeToString() == expected.SerializeToString()


def test_a_full_label_cache_still_encodes_every_label_set() -> None:
    batch = [
        Row(n, "i" * 32, "u", "", (0.0, 0.25, 0.5, 1.0), f"a{n}", (f"c{n}",), ("neg",))
        for n in range(10)
    ]
    encoder = AnnotationEncoder(limit=3)
    assert annotations_request(encoder.encode(batch)) == built(batch)
    assert annotations_request(encoder.encode(batch)) == built(batch)
