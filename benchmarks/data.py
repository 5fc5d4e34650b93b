"""The data of a benchmark: a generated file and what it holds, read apart from ingest.

A :class:`Data` knows each image's boxes: their values (``boxes``, for files small enough
to index) or only how many there are (``per_image``, for files of millions of rows, whose
images are numbered in their URLs as :mod:`benchmarks.datagen` writes them). From it and
the sandbox's deterministic download failures come the rows that can land
(:func:`good_rows`), which the ceilings count.
"""

from __future__ import annotations

import csv
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.datagen import generate, shuffle_file
from ingest.sandbox import SandboxOptions
from ingest.sandbox.state import fraction

__all__ = [
    "BoxKey",
    "Data",
    "box_key",
    "download_fails",
    "good_rows",
    "image_number",
    "load_data",
    "shuffled",
]

BoxKey = tuple[float, float, float, float]

_FLOAT32 = struct.Struct("<4f")


def box_key(cells: Sequence[float]) -> BoxKey:
    """A box as the service stores it (four float32, Clarifai's ``BoundingBox``), rounded to
    4 decimals: a box written in a file and the same box read back from the server give
    the same key, however many decimals the file wrote."""
    left, top, right, bottom = _FLOAT32.unpack(_FLOAT32.pack(*cells[:4]))
    return (round(left, 4), round(top, 4), round(right, 4), round(bottom, 4))


def image_number(url: str) -> int:
    """The number ``N`` of a generated image's URL (``.../N.jpg``)."""
    return int(url.rsplit("/", 1)[1].split(".", 1)[0])


@dataclass
class Data:
    """A generated file and what it holds: the boxes of every image."""

    path: Path
    counts: dict[str, int]
    boxes: dict[str, set[BoxKey]] = field(default_factory=dict)
    """Each image's boxes, by URL (an indexed file)."""
    per_image: bytearray | None = None
    """How many boxes image ``N`` has, at index ``N`` (a file too large to index, whose
    URLs end in ``/N.jpg``), else None."""

    @property
    def rows(self) -> int:
        return self.counts["rows"]

    @property
    def inputs(self) -> int:
        return self.counts["images"]


def shuffled(data: Data, seed: int) -> Data:
    """The same rows in a random order, beside ``data``'s file: same counts, same boxes."""
    path = data.path.with_name(data.path.stem + "-shuffled.csv")
    shuffle_file(data.path, path, seed=seed)
    return Data(path, data.counts, data.boxes, data.per_image)


def load_data(path: Path, images: int, seed: int, *, index: bool = True) -> Data:
    """Generate ``images`` images (1-5 boxes each, no image-level rows) into ``path`` and
    read it back with :mod:`csv`: each image's boxes (``index``), or only their number."""
    counts = generate(path, images=images, seed=seed, image_level_rate=0.0)
    data = Data(path, counts)
    if not index:
        data.per_image = bytearray(images)
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            cells = [row["left_col"], row["top_row"], row["right_col"], row["bottom_row"]]
            if not all(cells):
                continue
            url = row["url"]
            if data.per_image is None:
                data.boxes.setdefault(url, set()).add(box_key([float(c) for c in cells]))
            else:
                data.per_image[image_number(url)] += 1
    return data


def download_fails(options: SandboxOptions, url: str, mode: str) -> bool:
    """Whether the sandbox fails this image: drawn from the URL, or from the bytes sent."""
    if mode == "bytes":  # the SDK peer sends the URL's own bytes as the image
        raw = url.encode()
        return b"broken" in raw or (
            fraction(options.seed, hashlib.sha1(raw).hexdigest()) < options.download_failure_rate
        )
    return "broken" in url or fraction(options.seed, url) < options.download_failure_rate


def good_rows(data: Data, options: SandboxOptions, mode: str = "url") -> int:
    """The rows that can land: boxes on images the sandbox downloads."""
    if data.per_image is not None:
        if options.download_failure_rate:
            raise ValueError("a file indexed by counts only is for a server without failures")
        return sum(data.per_image)
    return sum(
        len(boxes) for url, boxes in data.boxes.items() if not download_fails(options, url, mode)
    )
