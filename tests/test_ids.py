"""Ids stay the same from one version of ingest to the next.

An upload interrupted under one version and resumed under another must find what the
first one sent under the same ids, or it would send it twice. The expected values are
the ids the first released version gave these rows; they must never change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ids
from ingest.model import Row
from ingest.source import open_rows

URL = "https://images.example.com/1.jpg"
URL_ID = "f817136c1b4f768f61d16f15a287a358"


def test_input_id_of_a_url() -> None:
    assert ids.input_id(URL) == URL_ID


def test_annotation_ids_of_boxes() -> None:
    assert ids.annotation_id(URL_ID, (0.1, 0.2, 0.45, 0.8), ("pet", "cat"), ("dog",)) == (
        "948267cc104ce5f75cc966f5d634a502"
    )
    assert ids.annotation_id(URL_ID, (0.5, 0.1, 0.9, 0.6), ("dog",), ()) == (
        "e8cf6356bda8c8c1394ee6def9e9a907"
    )
    assert ids.annotation_id("my-own_id", (0.0, 0.25, 1.0, 0.75), (), ()) == (
        "efa56e602bb5a19927cc3387087df22c"
    )


def test_label_order_and_number_spelling_do_not_matter() -> None:
    a = ids.annotation_id(URL_ID, (0.1, 0.2, 0.45, 0.8), ("pet", "cat"), ("dog",))
    assert ids.annotation_id(URL_ID, (0.10, 0.2, 0.450, 0.8), ("cat", "pet"), ("dog",)) == a
    assert ids.annotation_id(URL_ID, (0.1, 0.2, 0.45, 0.8), ("cat",), ("pet", "dog")) != a


@pytest.mark.anyio
async def test_the_reader_gives_rows_the_same_ids(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text(
        "url,left_col,top_row,right_col,bottom_row,pos_concepts,neg_concepts\n"
        f"{URL},0.10,0.2,0.45,0.80,cat|pet,dog\n"
        f"{URL},.5,0.1,0.9,0.6,dog,\n"
    )
    async with open_rows(p) as rows:
        got = [row async for row in rows]
    assert all(isinstance(r, Row) for r in got)
    assert [(r.input_id, r.annotation_id) for r in got if isinstance(r, Row)] == [
        (URL_ID, "948267cc104ce5f75cc966f5d634a502"),
        (URL_ID, "e8cf6356bda8c8c1394ee6def9e9a907"),
    ]
