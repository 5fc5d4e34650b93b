"""Data the verification tests upload, and what they change in the app behind its back.

The rows carry every part of what an upload stores: boxes, polygons, ``annotation_info``,
labels of the whole image (positive and negative), metadata with nested objects and
lists; they are shuffled, so that the data is grouped on disk first. The ids the app
holds are derived here from their rule (:mod:`tests.helpers`), not by ``ingest.ids``.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from tests.helpers import annotation_id, input_id

COLUMNS = [
    "url",
    "left_col",
    "top_row",
    "right_col",
    "bottom_row",
    "pos_concepts",
    "neg_concepts",
    "metadata",
    "polygon",
    "annotation_info",
]
VOCABULARY = ["cat", "dog", "car", "tree", "person", "bike"]


@dataclass
class Image:
    url: str
    input_id: str
    rows: list[dict[str, str]] = field(default_factory=list)
    boxes: list[tuple[str, tuple[float, float, float, float], list[str]]] = field(
        default_factory=list
    )
    """(annotation id, box, positive concepts) of each box row."""
    labels: list[str] = field(default_factory=list)
    """Concepts of the whole image (positive)."""
    line_of: dict[int, int] = field(default_factory=dict)
    """The line of each of its rows (by index in ``rows``) in the written file."""

    @property
    def lines(self) -> list[int]:
        return sorted(self.line_of.values())

    def box_line(self, n: int) -> int:
        """The line of its box number ``n``."""
        boxes = [i for i, row in enumerate(self.rows) if row["left_col"]]
        return self.line_of[boxes[n]]


@dataclass
class Data:
    path: Path
    images: list[Image]
    rows: int

    def by_line(self) -> dict[int, Image]:
        return {line: image for image in self.images for line in image.lines}


def write_data(path: Path, images: int = 24, *, seed: int = 3) -> Data:
    """``images`` images, each with 1-3 boxes; every third one labels of the whole image,
    every fourth a polygon, every other box ``annotation_info``; rows shuffled."""
    rng = random.Random(seed)
    made: list[Image] = []
    rows: list[tuple[Image, int]] = []
    for n in range(images):
        url = f"https://img.example.com/verify/{n}.jpg"
        image = Image(url, input_id(url))
        meta = json.dumps({"n": n, "split": rng.choice(["train", "val"]), "tags": ["a", "b"]})

        def row(image: Image = image, meta: str = meta, **cells: str) -> None:
            cell = dict.fromkeys(COLUMNS, "")
            cell.update(url=image.url, metadata=meta, **cells)
            rows.append((image, len(image.rows)))
            image.rows.append(cell)

        if n % 3 == 0:
            image.labels = rng.sample(VOCABULARY, 2)
            negative = "bike" if n % 2 and "bike" not in image.labels else ""
            row(pos_concepts="|".join(image.labels), neg_concepts=negative)
        for k in range(rng.randint(1, 3)):
            left, top = round(rng.uniform(0, 0.5), 4), round(rng.uniform(0, 0.5), 4)
            box = (left, top, round(left + 0.3, 4), round(top + 0.25, 4))
            pos = rng.sample(VOCABULARY[:4], 1)
            info = json.dumps({"difficult": False, "source": "test"}) if k % 2 else ""
            row(
                left_col=str(box[0]),
                top_row=str(box[1]),
                right_col=str(box[2]),
                bottom_row=str(box[3]),
                pos_concepts=pos[0],
                annotation_info=info,
            )
            image.boxes.append((annotation_id(image.input_id, box, pos, []), box, pos))
        if n % 4 == 1:
            row(polygon="0.1 0.1 0.4 0.15 0.3 0.5", pos_concepts="tree")
        made.append(image)
    rng.shuffle(rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        for line, (image, index) in enumerate(rows, start=2):
            writer.writerow(image.rows[index])
            image.line_of[index] = line
    return Data(path, made, len(rows))


def box_annotation(
    ann_id: str,
    iid: str,
    box: tuple[float, float, float, float],
    concepts: list[str],
    info: dict[str, Any] | None = None,
) -> Any:
    """An annotation of one box with positive concepts, as a client would post or patch it."""
    ann = resources_pb2.Annotation(id=ann_id, input_id=iid)
    region = ann.data.regions.add()
    bb = region.region_info.bounding_box
    bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = box
    for concept in concepts:
        region.data.concepts.add(id=concept, name=concept, value=1.0)
    if info is not None:
        ann.annotation_info.update(info)
    return ann


def patch_annotations(action: str, *annotations: Any) -> Any:
    return service_pb2.PatchAnnotationsRequest(action=action, annotations=list(annotations))
