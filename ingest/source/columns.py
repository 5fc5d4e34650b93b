"""The columns ``ingest`` reads, and what a header cell it does not read is.

A header cell is one of:

* a column ingest reads (:data:`READ_COLUMNS`): the image (``url`` or ``file``), the box
  (:data:`BOX_COLUMNS`) and the optional :data:`OPTIONAL_COLUMNS`; ``line`` and ``error``
  are read too (the failures file's own columns: fresh ones are written, so their old
  cells are left out on purpose);
* a near miss of a column ingest reads and the header lacks (:func:`near_miss`): an
  error before anything is sent, with a "did you mean" (a misspelt ``pos_concept``
  would otherwise lose every label without a word);
* anything else: kept in ``Row.raw`` (it comes back with a failed row) but not
  uploaded, which the source says as a warning (``strict`` refuses it).

Names are matched exactly after stripping surrounding spaces: ``URL`` is not ``url``
(Clarifai's SDK matches its CSV columns exactly too). A near miss is judged apart from
case, spaces and hyphens (``URL``, ``Pos Concepts`` and ``pos-concepts`` are near
misses, with the right spelling in the message): within two edits (one for names of four
characters or fewer, such as ``url``), counting a swap of two neighbours as one edit, or
a word of a column's name alone (``left`` for ``left_col``, ``concepts`` for
``pos_concepts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "BOX_COLUMNS",
    "FAILURE_COLUMNS",
    "IMAGE_COLUMNS",
    "OPTIONAL_COLUMNS",
    "READ_COLUMNS",
    "near_miss",
    "unknown_columns",
    "unknown_warning",
]

IMAGE_COLUMNS = ("url", "file")
"""The image: exactly one of them."""

BOX_COLUMNS = ("left_col", "top_row", "right_col", "bottom_row")
"""The box: all four or none (a file without them is a classification set; all four
empty on a row without a region)."""

OPTIONAL_COLUMNS = (
    "pos_concepts",
    "neg_concepts",
    "concept_names",
    "metadata",
    "input_id",
    "polygon",
    "annotation_info",
    "dataset_id",
    "geo",
)
"""Read when present."""

FAILURE_COLUMNS = ("line", "error")
"""The failures file's own columns: known, and not uploaded (a new run writes fresh ones)."""

READ_COLUMNS = frozenset((*IMAGE_COLUMNS, *BOX_COLUMNS, *OPTIONAL_COLUMNS, *FAILURE_COLUMNS))
"""Every column name ingest knows."""

_GENERIC_WORDS = frozenset({"col", "row", "id"})
"""Words of column names too common to hint at one column."""


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _distance(a: str, b: str, limit: int) -> int:
    """Edits from ``a`` to ``b`` (insert, delete, replace, swap two neighbours); any
    value over ``limit`` is returned as ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[len(b)], limit + 1)


def near_miss(cell: str, names: Iterable[str]) -> str | None:
    """The name in ``names`` that the header cell ``cell`` most likely misspells, or None.

    The rule is in the module docs; the nearest name wins, the first of ``names`` on a tie.
    """
    got = _norm(cell)
    if not got:
        return None
    best: tuple[int, str] | None = None
    for name in names:
        want = _norm(name)
        if got == want:
            return name
        limit = 1 if len(want) <= 4 else 2
        edits = _distance(got, want, limit)
        if edits > limit and len(got) >= 3 and got not in _GENERIC_WORDS and got in want.split("_"):
            edits = limit  # a word of the name alone: as far as a near miss goes
        if edits <= limit and (best is None or edits < best[0]):
            best = (edits, name)
    return best[1] if best is not None else None


def unknown_columns(columns: Sequence[str]) -> list[tuple[int, str]]:
    """(position, name) of each header cell ingest does not read (positions from 1)."""
    return [(i, c) for i, c in enumerate(columns, start=1) if c not in READ_COLUMNS]


def unknown_warning(position: int, name: str, path: str | None) -> str:
    """What a source says about a column it does not read."""
    where = f"{path}: " if path else ""
    what = f"column {name!r}" if name else f"column {position} (no name)"
    return (
        f"{where}line 1: {what} is not one ingest reads; its cells are not uploaded "
        "(they come back with a failed row)"
    )
