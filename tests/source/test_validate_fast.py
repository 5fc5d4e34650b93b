"""The validator's fast path says exactly what its row-by-row check says.

:meth:`Validator.rows` takes the usual header through one tight loop and hands any row it
does not accept whole to :meth:`Validator.check`; every record here, valid or not, must
come out of both the same (the same row, or the same problem in the same words).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import ids
from ingest.model import InvalidRow, Row
from ingest.source.csvstream import Record
from ingest.source.validate import Validator

URLS = [
    "https://x.example/1.jpg",
    "https://x.example/2.jpg",
    " https://x.example/1.jpg ",
    "http://x.example/a b.jpg",
    "HTTPS://X.EXAMPLE/3.JPG",
    "https://x.example/\x07.jpg",
    "ftp://x.example/4.jpg",
    "x.example/5.jpg",
    "",
]
NUMBERS = ["", " ", "0", "1", "0.0", "1.0", "0.5", "0.50", ".5", "0.25", "0.75", "0.0001"]
NUMBERS += ["1e-5", "2.5e-1", " 0.3", "nan", "inf", "-0.1", "1.5", "abc", "0.123456789012345"]
CONCEPTS = ["", "cat", "cat|dog", "dog|cat", " cat | dog|cat||", "a b", "|", "Cat", "dog"]
METADATA = ["", "  ", "{}", '{"a": 1}', '{"a": {"b": [1, 2]}}', "[1]", "{bad", '"x"']

cells = st.tuples(
    st.sampled_from(URLS),
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMBERS),
    st.sampled_from(NUMBERS),
    st.sampled_from(CONCEPTS),
    st.sampled_from(CONCEPTS),
    st.sampled_from(METADATA),
)
# most boxes valid, so that rows of one image and the caches come into play
valid_box = st.sampled_from([("0.1", "0.2", "0.3", "0.4"), ("0", "0", "1", "1"), ("", "", "", "")])
records = st.lists(
    st.one_of(
        cells,
        st.tuples(
            st.sampled_from(URLS[:2]),
            valid_box,
            st.sampled_from(CONCEPTS[:4]),
            st.sampled_from(["", "dog"]),
            st.sampled_from(METADATA[:4]),
        ).map(lambda t: (t[0], *t[1], *t[2:])),
        st.just(("https://x.example/1.jpg", "0.1")),  # too few cells
        st.just(()),  # a blank line
    ),
    max_size=60,
)

SEED = ["url", "left_col", "top_row", "right_col", "bottom_row", "pos_concepts", "neg_concepts"]
HEADERS = [
    [*SEED, "metadata"],
    [*SEED, "metadata", "notes"],  # a column ingest does not read
    ["metadata", *SEED],
]


def _records(rows: Sequence[Sequence[str]], header: list[str]) -> list[Record]:
    out: list[Record] = []
    for n, row in enumerate(rows):
        cells = list(row)
        if len(cells) == 8 and len(header) != 8:
            cells = [cells[7], *cells[:7]] if header[0] == "metadata" else [*cells, "a note"]
        out.append((n + 2, cells, ""))
    out.append((len(rows) + 2, ["https://x.example/9.jpg"], "the CSV record cannot be read: x"))
    return out


def _both(header: list[str], recs: list[Record], **options: object) -> None:
    fast = Validator(header, path="data.csv", base_dir=Path("."), **options)  # type: ignore[arg-type]
    slow = Validator(header, path="data.csv", base_dir=Path("."), **options)  # type: ignore[arg-type]
    assert fast._fast is not None  # the header takes the fast path
    expected: list[Row | InvalidRow] = []
    for line, row, problem in recs:
        if problem:
            raw = dict(zip(header, row, strict=False))
            expected.append(InvalidRow(line, "", problem, raw))
        elif row:
            expected.append(slow.check(line, row, False))
    half = len(recs) // 2  # two calls: what the first leaves in the caches carries over
    assert fast.rows(recs[:half], False) + fast.rows(recs[half:], False) == expected


@settings(max_examples=150, deadline=None)
@given(records, st.sampled_from(HEADERS))
def test_fast_rows_are_the_checked_rows(rows: list[tuple[str, ...]], header: list[str]) -> None:
    _both(header, _records(rows, header))


@settings(max_examples=50, deadline=None)
@given(records)
def test_fast_rows_with_concept_names_and_names_in_cells(rows: list[tuple[str, ...]]) -> None:
    header = [*SEED, "metadata"]
    _both(header, _records(rows, header), concept_names={"cat": "Cat", "dog": "Dog"})
    _both(header, _records(rows, header), concept_ids="names")


def test_other_headers_and_dirty_chunks_take_the_checks() -> None:
    for extra in ("input_id", "polygon", "annotation_info", "dataset_id", "concept_names"):
        assert Validator([*SEED, extra], path=None, base_dir=Path("."))._fast is None
    assert Validator(["file", *SEED[1:]], path=None, base_dir=Path("."))._fast is None
    assert Validator(SEED, path=None, base_dir=Path("."), counting=True)._fast is None
    v = Validator(SEED, path=None, base_dir=Path("."))
    [bad] = v.rows([(2, ["https://x.example/1.jpg\udc80", "", "", "", "", "", ""], "")], True)
    assert isinstance(bad, InvalidRow) and bad.column == "url"


def test_box_ids_are_the_ids_of_the_numbers() -> None:
    """However a number is written, the id is that of the float (``0.5`` = ``0.50``)."""
    v = Validator(SEED, path=None, base_dir=Path("."))
    box = ["0.5", "0.250", "1", "1.0"]
    [row] = v.rows([(2, ["https://x.example/1.jpg", *box, "cat", ""], "")], False)
    assert isinstance(row, Row)
    assert row.annotation_id == ids.annotation_id(row.input_id, (0.5, 0.25, 1.0, 1.0), ["cat"], [])
