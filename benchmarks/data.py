"""The data of a scenario: a generated CSV, the boxes of every URL, the rows that can land."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.datagen import generate, shuffle_file
from ingest.sandbox import SandboxOptions
from ingest.sandbox.state import fraction

__all__ = ["BoxKey", "Data", "box_key", "download_fails", "good_rows", "load_data", "shuffled"]

BoxKey = tuple[float, float, float, float]


def box_key(cells: Sequence[float]) -> BoxKey:
    """A box as 4-decimal floats: the CSV's text and the server's float32 agree on it."""
    return (round(cells[0], 4), round(cells[1], 4), round(cells[2], 4), round(cells[3], 4))


@dataclass
class Data:
    """A generated CSV and what it holds: the boxes of every URL."""

    path: Path
    counts: dict[str, int]
    boxes: dict[str, set[BoxKey]] = field(default_factory=dict)

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
    return Data(path, data.counts, data.boxes)


def load_data(path: Path, images: int, seed: int, *, index: bool = True) -> Data:
    """Generate ``images`` images (1-5 boxes each, no image-level rows) into ``path``."""
    counts = generate(path, images=images, seed=seed, image_level_rate=0.0)
    data = Data(path, counts)
    if index:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                cells = [row["left_col"], row["top_row"], row["right_col"], row["bottom_row"]]
                if all(cells):
                    data.boxes.setdefault(row["url"], set()).add(box_key([float(c) for c in cells]))
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
    return sum(
        len(boxes) for url, boxes in data.boxes.items() if not download_fails(options, url, mode)
    )
