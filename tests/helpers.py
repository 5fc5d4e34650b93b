"""Test data that knows what the server should end up holding, and the ways the tests
reach a sandbox: a client's Config, and a command in its own process.

What the server should hold is computed here, apart from the code under test: the ids
ingest derives from the data are derived again from their rule (:func:`input_id`,
:func:`annotation_id`), not by ``ingest.ids``, so that a change to them (which would make
an upload resumed by a newer version send its rows again) fails the tests."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ingest import Config
from ingest.source.cells import SEED_COLUMNS

if TYPE_CHECKING:
    from ingest.sandbox import Sandbox

COLUMNS = list(SEED_COLUMNS)
ROOT = Path(__file__).resolve().parents[1]

#: The keys docs/contracts.md promises in the JSON report.
REPORT_KEYS = (
    "rows_read",
    "rows_invalid",
    "inputs_created",
    "inputs_existing",
    "inputs_failed",
    "annotations_created",
    "annotations_failed",
    "requests",
    "throttled",
    "retries",
    "elapsed_s",
)


def input_id(url: str) -> str:
    """An input's id by its rule (README, "Ids are derived from the data"; ingest/ids.py):
    128 bits of BLAKE2b over the URL's UTF-8 bytes, as 32 hex digits."""
    return hashlib.blake2b(url.encode(), digest_size=16).hexdigest()


def annotation_id(
    input_id: str, box: tuple[float, float, float, float], pos: list[str], neg: list[str]
) -> str:
    """A box's annotation id by its rule (ingest/ids.py): 128 bits of BLAKE2b over the input
    id, the box's four numbers as Python writes floats (``repr``), the positive labels
    sorted and joined by ``|``, then the negative ones likewise, each part after the
    first following a unit separator (0x1f)."""
    parts = [input_id, *(repr(float(v)) for v in box), "|".join(sorted(pos)), "|".join(sorted(neg))]
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def sandbox_config(sb: Sandbox, **options: Any) -> Config:
    """A client of ``sb`` with the sandbox's (first) PAT, its user and app, quick to react
    (short linger, backoff and call timeout; a first processing estimate of 0.2 s);
    ``options`` override any of it."""
    values: dict[str, Any] = {
        "pat": sb.options.pats[0],
        "user_id": sb.options.user_id,
        "app_id": sb.options.app_id,
        "base": sb.base_url,
        "linger": 0.1,
        "processing_estimate": 0.2,
        "backoff": 0.05,
        "call_timeout": 5.0,
    }
    values.update(options)
    return Config(**values)


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would speak for a command's own options
    (Clarifai's credentials and base, gRPC's TLS roots, ingest's debug switch), with the
    project importable; ``extra`` on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLARIFAI_", "GRPC_DEFAULT", "INGEST_"))
    }
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


async def run_module(
    module: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m module args`` in its own process from the project's folder, its output
    captured and its exit status left to the caller; ``env`` defaults to :func:`cli_env`."""
    return await anyio.run_process(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=cli_env() if env is None else env,
        check=False,
    )


@dataclass
class Dataset:
    """Rows to write, and what a correct upload leaves on the server."""

    rows: list[dict[str, str]] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # input id -> url (every valid url)
    good_inputs: set[str] = field(default_factory=set)  # inputs that process successfully
    boxes: dict[str, tuple[str, tuple[float, float, float, float], tuple[str, ...]]] = field(
        default_factory=dict
    )  # annotation id -> (input id, box, positive concepts), for good inputs
    invalid_lines: set[int] = field(default_factory=set)
    broken_lines: set[int] = field(default_factory=set)
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        return path


def make_dataset(images: int = 100, *, seed: int = 7, broken_every: int = 13) -> Dataset:
    """Images with 0-4 boxes (0 = one image-level row), some URLs split far apart,
    some broken URLs, a few invalid rows. Line numbers assume a header on line 1."""
    rng = random.Random(seed)
    data = Dataset()
    early: list[dict[str, str]] = []
    late: list[dict[str, str]] = []
    vocab = ["cat", "dog", "car", "tree", "person", "bike"]
    for i in range(images):
        broken = i % broken_every == 5
        url = f"https://img.example.com/{'broken-' if broken else ''}{i}.jpg"
        iid = input_id(url)
        data.inputs[iid] = url
        if not broken:
            data.good_inputs.add(iid)
        meta = {"n": i, "split": rng.choice(["train", "val"])}
        data.metadata[iid] = meta
        nbox = rng.randint(0, 4)
        rows: list[dict[str, str]] = []
        if nbox == 0:
            pos = rng.sample(vocab, 2)
            rows.append(_row(url, None, pos, [], meta))
        for _ in range(nbox):
            left, top = round(rng.uniform(0, 0.5), 4), round(rng.uniform(0, 0.5), 4)
            box = (
                left,
                top,
                round(left + rng.uniform(0.05, 0.45), 4),
                round(top + rng.uniform(0.05, 0.45), 4),
            )
            pos = rng.sample(vocab, rng.randint(1, 2))
            neg = [c for c in rng.sample(vocab, 1) if c not in pos]
            rows.append(_row(url, box, pos, neg, meta))
            if not broken:
                aid = annotation_id(iid, box, pos, neg)
                data.boxes[aid] = (iid, box, tuple(pos))
        if len(rows) > 2 and i % 4 == 0:
            early.extend(rows[:2])
            late.extend(rows[2:])  # same URL again, far down the file
        else:
            early.extend(rows)
    # invalid rows sprinkled in
    bad = [
        _row("https://img.example.com/bad-a.jpg", (0.5, 0.1, 0.4, 0.2), ["cat"], [], {}),
        {**_row("https://img.example.com/bad-b.jpg", None, ["cat"], [], {}), "metadata": "{oops"},
        _row("", (0.1, 0.1, 0.2, 0.2), ["cat"], [], {}),
    ]
    out = [*early[:10], bad[0], *early[10:40], bad[1], *early[40:], bad[2], *late]
    data.rows = out
    for lineno, row in enumerate(out, start=2):
        if row in bad:
            data.invalid_lines.add(lineno)
        elif "broken" in row["url"]:
            data.broken_lines.add(lineno)
    return data


def _row(
    url: str,
    box: tuple[float, float, float, float] | None,
    pos: list[str],
    neg: list[str],
    meta: dict[str, object],
) -> dict[str, str]:
    cells = [str(v) for v in box] if box else ["", "", "", ""]
    return {
        "url": url,
        "left_col": cells[0],
        "top_row": cells[1],
        "right_col": cells[2],
        "bottom_row": cells[3],
        "pos_concepts": "|".join(pos),
        "neg_concepts": "|".join(neg),
        "metadata": json.dumps(meta) if meta else "",
    }
