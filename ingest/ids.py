"""Deterministic ids: the same image and box always get the same id.

Clarifai accepts client-chosen ids of ``A-Za-z0-9_-``; 32 hex characters (128 bits of
a hash, like the SDK's ``uuid4().hex``) are known to be accepted. Because the ids
depend only on the data, a re-sent call, a repeated URL later in the file or a re-run
after a crash can never create a second copy: the service answers "duplicate".

An annotation id hashes the input id, the box's four numbers (each as Python writes the
float: ``0.5`` and ``0.50`` are the same box) and its sorted labels. :func:`annotation_id`
does it in one call; the reader uses :func:`input_key`, :func:`labels_part` and
:func:`box_id`, so that the parts shared by many rows are encoded once. The ids never
change from one version to the next: an upload resumed with a newer ``ingest`` must
recognise what an older one sent.

A polygon's annotation id (:func:`polygon_id`) hashes the input id, a ``polygon``
marker, every coordinate written the same way, and the labels: it can never equal a
box's id, and box ids are exactly what they always were.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

__all__ = [
    "ID_PATTERN",
    "MAX_INPUT_ID",
    "annotation_id",
    "box_id",
    "box_id_of_texts",
    "input_id",
    "input_key",
    "is_valid_id",
    "is_valid_input_id",
    "labels_part",
    "number_text",
    "polygon_id",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")

_blake = hashlib.blake2b


def is_valid_id(value: str) -> bool:
    """True when ``value`` is an id Clarifai accepts for inputs, annotations, concepts."""
    return ID_PATTERN.fullmatch(value) is not None


MAX_INPUT_ID = 48
"""Longest input id Clarifai accepts ("id must be between 1 and 48 characters long")."""


def is_valid_input_id(value: str) -> bool:
    """True when ``value`` is an input id Clarifai accepts: an id of at most 48 characters."""
    return len(value) <= MAX_INPUT_ID and ID_PATTERN.fullmatch(value) is not None


def input_id(source: str) -> str:
    """The input id for an image named by URL (or by ``file:`` plus its path)."""
    return _blake(source.encode("utf-8"), digest_size=16).hexdigest()


def input_key(input_id: str) -> bytes:
    """The input id's part of its annotation ids (ids never hold the separator)."""
    return input_id.encode("ascii") + b"\x1f"


def labels_part(concepts: Sequence[str]) -> bytes:
    """One label cell's part of an annotation id (order-free)."""
    return ("\x1f" + "|".join(sorted(concepts))).encode()


def box_id(input_key: bytes, box: tuple[float, float, float, float], labels: bytes) -> str:
    """The annotation id of ``box`` from the encoded input id and labels."""
    return box_id_of_texts(input_key, [number_text(value) for value in box], labels)


def number_text(value: float) -> str:
    """One number of a box as its annotation id writes it: as Python writes the float."""
    return repr(float(value))


def box_id_of_texts(input_key: bytes, texts: Sequence[str], labels: bytes) -> str:
    """:func:`box_id` from the box's four numbers already written by :func:`number_text`
    (a reader that meets the same cells again keeps them written)."""
    return _blake(input_key + "\x1f".join(texts).encode() + labels, digest_size=16).hexdigest()


def annotation_id(
    input_id: str,
    box: tuple[float, float, float, float],
    pos: Sequence[str],
    neg: Sequence[str],
) -> str:
    """The annotation id for one box of one input: from the box and its labels."""
    return box_id(input_key(input_id), box, labels_part(pos) + labels_part(neg))


_POLYGON = b"polygon\x1f"


def polygon_id(input_key: bytes, points: Sequence[float], labels: bytes) -> str:
    """The annotation id of a polygon (flat normalised ``x, y`` pairs) of one input."""
    coords = "\x1f".join(repr(float(v)) for v in points)
    return _blake(input_key + _POLYGON + coords.encode() + labels, digest_size=16).hexdigest()
