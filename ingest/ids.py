"""Deterministic ids: the same image and box always get the same id.

Clarifai accepts client-chosen ids of ``A-Za-z0-9_-``; 32 hex characters (128 bits of
a hash, like the SDK's ``uuid4().hex``) are known to be accepted. Because the ids
depend only on the data, a re-sent call, a repeated URL later in the file or a re-run
after a crash can never create a second copy: the service answers "duplicate".
"""

from __future__ import annotations

import hashlib
import re

_blake = hashlib.blake2b

__all__ = ["ID_PATTERN", "annotation_id", "input_id", "is_valid_id"]

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_valid_id(value: str) -> bool:
    """True when ``value`` is an id Clarifai accepts for inputs, annotations, concepts."""
    return ID_PATTERN.fullmatch(value) is not None


def input_id(source: str) -> str:
    """The input id for an image named by URL (or by ``file:`` plus its path)."""
    return hashlib.blake2b(source.encode("utf-8"), digest_size=16).hexdigest()


def annotation_id(
    input_id: str,
    box: tuple[float, float, float, float],
    pos: tuple[str, ...],
    neg: tuple[str, ...],
) -> str:
    """The annotation id for one box of one input: from the box and its labels."""
    left, top, right, bottom = box
    p = "|".join(sorted(pos)) if len(pos) > 1 else "".join(pos)
    n = "|".join(sorted(neg)) if len(neg) > 1 else "".join(neg)
    coords = f"{float(left)!r}\x1f{float(top)!r}\x1f{float(right)!r}\x1f{float(bottom)!r}"
    key = f"{input_id}\x1f{coords}\x1f{p}\x1f{n}"
    return _blake(key.encode("utf-8"), digest_size=16).hexdigest()
