"""Generate realistic region CSV files, streaming, in constant memory.

::

    python -m benchmarks.datagen OUT.csv --images N [--seed S] [--broken-rate R]
        [--invalid-rate R | --invalid-rows K] [--image-level-rate R] [--shuffle-window W]

Each image gets 1-5 boxes (``--min-boxes``, ``--max-boxes``; one row each) with 1-3
positive concepts from a small vocabulary, sometimes a negative one, and a small metadata
JSON object shared by all its rows. With ``--image-level-rate R`` a fraction R of the
images also get one row without a box (image-level labels): ``--image-level-rate 1
--max-boxes 0 --min-boxes 0`` writes a classification set, one row of labels per image,
the four box cells empty. Broken images (``--broken-rate``) have ``broken``
in their URL (the sandbox fails to download them). Invalid rows (``--invalid-rate``
per image, or exactly ``--invalid-rows``) are extra rows that the validator rejects.
``--shuffle-window W`` shuffles rows within a sliding window of W rows, so rows of one
image end up apart (memory stays O(W)).

:func:`generate` does the same from Python and returns the counts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from collections.abc import Sequence

from ingest.source.cells import SEED_COLUMNS

__all__ = ["COLUMNS", "VOCABULARY", "generate", "main", "shuffle_file"]

COLUMNS = list(SEED_COLUMNS)

VOCABULARY = [
    "cat",
    "dog",
    "car",
    "bicycle",
    "person",
    "tree",
    "bird",
    "boat",
    "traffic_light",
    "stop-sign",
    "bench",
    "horse",
]

BASE_URL = "https://images.example.com"

# (cells that make a row invalid, a label for the counts)
_INVALID_KINDS: list[tuple[dict[str, str], str]] = [
    ({"left_col": "1.5"}, "box above 1"),
    ({"right_col": "nan"}, "NaN"),
    ({"left_col": "0.6", "right_col": "0.6"}, "zero width"),
    ({"top_row": "-0.2"}, "negative"),
    ({"pos_concepts": "red car"}, "concept with a space"),
    ({"metadata": "[1, 2]"}, "metadata list"),
    ({"metadata": "{not json"}, "invalid JSON"),
    ({"url": "ftp://images.example.com/x.jpg"}, "ftp url"),
    ({"url": ""}, "empty url"),
    ({"bottom_row": "abc"}, "text in a number column"),
]


def _fmt(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".") if v else "0"


def _box(rng: random.Random) -> tuple[str, str, str, str]:
    left = rng.uniform(0.0, 0.8)
    top = rng.uniform(0.0, 0.8)
    right = min(1.0, left + rng.uniform(0.02, 0.5))
    bottom = min(1.0, top + rng.uniform(0.02, 0.5))
    return _fmt(left), _fmt(top), _fmt(right), _fmt(bottom)


def generate(
    path: str | os.PathLike[str],
    *,
    images: int,
    seed: int = 0,
    broken_rate: float = 0.0,
    invalid_rate: float = 0.0,
    invalid_rows: int | None = None,
    image_level_rate: float = 0.0,
    shuffle_window: int = 0,
    max_boxes: int = 5,
    min_boxes: int = 1,
) -> dict[str, int]:
    """Write a CSV of ``images`` images to ``path``; return what it holds.

    The counts: ``images`` (distinct valid URLs), ``broken_images``, ``rows`` (data
    rows written), ``boxes`` (valid box rows), ``image_level_rows``,
    ``invalid_rows``, ``valid_rows``, ``labels`` (distinct concepts in valid rows).
    ``invalid_rows`` (an exact number) overrides ``invalid_rate``.
    """
    rng = random.Random(seed)
    counts = dict.fromkeys(
        ("images", "broken_images", "rows", "boxes", "image_level_rows", "invalid_rows"), 0
    )
    labels: set[str] = set()
    invalid_at: set[int] = set()
    if invalid_rows is not None:
        invalid_at = set(rng.sample(range(images), min(invalid_rows, images)))
    window: list[list[str]] = []
    wsize = max(0, shuffle_window)

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)

        def emit(row: list[str]) -> None:
            counts["rows"] += 1
            if wsize <= 1:
                writer.writerow(row)
                return
            if len(window) < wsize:
                window.append(row)
                return
            i = rng.randrange(wsize)
            writer.writerow(window[i])
            window[i] = row

        for n in range(images):
            broken = rng.random() < broken_rate
            url = f"{BASE_URL}/broken/{n}.jpg" if broken else f"{BASE_URL}/{n}.jpg"
            counts["images"] += 1
            counts["broken_images"] += broken
            metadata = json.dumps(
                {"source": "datagen", "n": n, "split": rng.choice(("train", "val"))},
                separators=(",", ":"),
            )
            rows: list[list[str]] = []
            if rng.random() < image_level_rate:
                pos = rng.sample(VOCABULARY, rng.randint(1, 2))
                labels.update(pos)
                rows.append([url, "", "", "", "", "|".join(pos), "", metadata])
                counts["image_level_rows"] += 1
            for _ in range(rng.randint(min_boxes, max_boxes)):
                pos = rng.sample(VOCABULARY, rng.randint(1, 3))
                neg = ""
                if rng.random() < 0.1:
                    neg = rng.choice([c for c in VOCABULARY if c not in pos])
                    labels.add(neg)
                labels.update(pos)
                rows.append([url, *_box(rng), "|".join(pos), neg, metadata])
                counts["boxes"] += 1
            for row in rows:
                emit(row)
            bad = n in invalid_at if invalid_rows is not None else rng.random() < invalid_rate
            if bad:
                cells, _ = rng.choice(_INVALID_KINDS)
                cells_of = dict(zip(COLUMNS, [url, *_box(rng), "cat", "", metadata], strict=True))
                cells_of.update(cells)
                emit([cells_of[c] for c in COLUMNS])
                counts["invalid_rows"] += 1

        rng.shuffle(window)
        writer.writerows(window)

    counts["valid_rows"] = counts["rows"] - counts["invalid_rows"]
    counts["labels"] = len(labels)
    return counts


def shuffle_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, seed: int) -> None:
    """Write ``src``'s rows to ``dst`` in a random order (the header stays first).

    The rows of one image end up scattered through the whole file, as in an export
    sorted by another column. Works on lines: :func:`generate` writes no line break
    inside a cell. Holds the file in memory (the harness's, not a client's).
    """
    with open(src, "rb") as f:
        header = f.readline()
        rows = f.readlines()
    random.Random(seed).shuffle(rows)
    with open(dst, "wb") as f:
        f.write(header)
        f.writelines(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.datagen", description=__doc__.split("\n")[0]
    )
    p.add_argument("out", help="CSV file to write")
    p.add_argument("--images", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--broken-rate", type=float, default=0.0, help="fraction of broken URLs")
    p.add_argument("--invalid-rate", type=float, default=0.0, help="invalid rows per image")
    p.add_argument("--invalid-rows", type=int, default=None, help="exact number of invalid rows")
    p.add_argument("--image-level-rate", type=float, default=0.0, help="images with a box-less row")
    p.add_argument("--shuffle-window", type=int, default=0, help="rows shuffled within a window")
    p.add_argument("--max-boxes", type=int, default=5, help="boxes per image: at most")
    p.add_argument("--min-boxes", type=int, default=1, help="boxes per image: at least")
    options = vars(p.parse_args(argv))  # every option but ``out`` is one of generate's
    counts = generate(options.pop("out"), **options)
    json.dump(counts, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
