"""``ingest upload`` and the clarifai SDK's own COCO loader side by side, on one COCO file.

::

    python -m benchmarks.coco_sdk                               # 60,000 annotations, 60 s cap
    python -m benchmarks.coco_sdk --annotations 30000 --cap 30 --out /tmp/coco-sdk

Writes a COCO file (three annotations per image on average, ordered by category, local
PNG images under ``images/`` beside it, as the SDK's loader reads them), then runs, each
against a fresh sandbox in its own process with the realistic settings of the benchmark
suite (15 requests/s, 60 ms latency, processing 0.5-2 s):

* ``ingest upload FILE.json`` (the command line, ``--no-progress``);
* the SDK's ``COCODetectionDataLoader(images_dir, label_filepath)`` (pycocotools loads the
  file) handed to ``Dataset.upload_dataset(dataloader=..., batch_size=32)``, as its docs
  show. It needs ``clarifai`` and ``pycocotools``; without them it is skipped.

Each client runs under the benchmark suite's launcher (:func:`benchmarks.runner.run_client`:
peak RSS ``ru_maxrss``, CPU seconds, the server's counts) and is stopped at ``--cap``
seconds; rows/s is the boxes landed over the time the client ran. The sandbox keeps what
it is sent, so each stored input is matched to its image (ingest's inputs by their
``coco_image_id`` metadata, the SDK's by their ``filename``) and its boxes to the file's:
ingest must duplicate nothing, and lose nothing if it finishes within the cap, or the
command exits 1 (the SDK's figures are measured, not judged). The images are all one
PNG, so the sandbox fails no download (its failures are drawn from the bytes). Writes
``coco_sdk.json`` into ``--out`` (``benchmarks/results/``) and prints a table.
"""

from __future__ import annotations

import argparse
import random
import shlex
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.clients import ingest_cli
from benchmarks.common import APP, PAT, RESULTS, USER, provenance
from benchmarks.data import Data, box_key
from benchmarks.render import client_name, fmt_lost, intro, server, table
from benchmarks.runner import run_client, settings, summary
from benchmarks.strict import python
from benchmarks.verdict import failures, finish
from ingest.sandbox import SandboxOptions

__all__ = ["generate", "main", "markdown"]

REALISTIC = SandboxOptions(rps=15, latency=0.06, processing=(0.5, 2.0), seed=1)
RPS = 15.0
CATEGORIES = 80
WIDTH, HEIGHT = 64, 48

SDK = r"""
import logging, os, sys
os.environ.setdefault("TQDM_DISABLE", "1")
from clarifai.client.dataset import Dataset
from clarifai.datasets.upload.loaders.coco_detection import COCODetectionDataLoader
images, label, base, pat, user, app = sys.argv[1:7]
logging.getLogger("clarifai").setLevel(logging.ERROR)
loader = COCODetectionDataLoader(images, label)
dataset = Dataset(dataset_id="bench", user_id=user, app_id=app, base_url=base, pat=pat)
dataset.upload_dataset(dataloader=loader, batch_size=32)
"""


def _png() -> bytes:
    """A solid-colour PNG of WIDTH x HEIGHT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = (b"\x00" + bytes((120, 110, 90)) * WIDTH) * HEIGHT
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def generate(size: int, folder: Path, seed: int = 5) -> tuple[Path, Data]:
    """A COCO file of ``size`` annotations over local images (written beside it), and its
    boxes by image (``image N``, N its id and its file's name)."""
    rng = random.Random(seed)
    images = max(1, size // 3)
    boxes: dict[str, set[tuple[float, float, float, float]]] = {}
    (folder / "images").mkdir(parents=True, exist_ok=True)
    data = _png()
    for i in range(images):
        (folder / "images" / f"{i}.png").write_bytes(data)
    path = folder / "instances.json"
    with path.open("w") as js:
        js.write('{"images": [\n')
        js.write(
            ",\n".join(
                f'{{"id": {i}, "file_name": "{i}.png", "width": {WIDTH}, "height": {HEIGHT}}}'
                for i in range(images)
            )
        )
        js.write('\n], "annotations": [\n')
        ann = 0
        for cat in range(CATEGORIES):  # ordered by category, as COCO files are
            for _ in range(size // CATEGORIES + (1 if cat < size % CATEGORIES else 0)):
                x, y = round(rng.uniform(0, 40), 2), round(rng.uniform(0, 30), 2)
                w, h = round(rng.uniform(4, 20), 2), round(rng.uniform(4, 15), 2)
                sep = ",\n" if ann else ""
                image = rng.randrange(images)
                js.write(
                    f'{sep}{{"id": {ann}, "image_id": {image}, '
                    f'"category_id": {cat}, "bbox": [{x}, {y}, {w}, {h}], '
                    f'"area": {w * h:.1f}, "iscrowd": 0, "segmentation": []}}'
                )
                ann += 1
                box = (x / WIDTH, y / HEIGHT, (x + w) / WIDTH, (y + h) / HEIGHT)
                boxes.setdefault(f"image {image}", set()).add(box_key(box))
        js.write('\n], "categories": [\n')
        js.write(",\n".join(f'{{"id": {c}, "name": "class {c}"}}' for c in range(CATEGORIES)))
        js.write("\n]}\n")
    return path, Data(path, {"rows": size, "images": images}, boxes)


def image_of(message: Any) -> str:
    """The image a stored input holds: ingest's ``coco_image_id`` metadata, the SDK's
    ``filename`` (``N.png``)."""
    fields = message.data.metadata.fields
    if "coco_image_id" in fields:
        return f"image {int(fields['coco_image_id'].number_value)}"
    if "filename" in fields:
        return f"image {int(fields['filename'].string_value.split('.')[0])}"
    return f"input {message.id}"


def sdk_available() -> bool:
    probe = "import clarifai.client.dataset, pycocotools.coco"
    return subprocess.run(python("-c", probe), capture_output=True).returncode == 0


async def compare(ns: argparse.Namespace, folder: Path) -> dict[str, Any]:
    print(f"generating {ns.annotations:,} annotations ...", file=sys.stderr, flush=True)
    path, data = generate(ns.annotations, folder)
    clients = [("ingest (CLI)", ingest_cli(path, RPS, folder))]
    notes = []
    if sdk_available():
        sdk = python("-c", SDK, str(folder / "images"), str(path))
        clients.append(("clarifai SDK (COCO loader)", lambda base: [*sdk, base, PAT, USER, APP]))
    else:
        notes.append("clarifai or pycocotools is not importable here: SDK skipped")
        print(notes[-1], file=sys.stderr)
    runs = []
    for name, command in clients:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        r = await run_client(
            name,
            command,
            REALISTIC,
            data,
            cap=ns.cap,
            judged=name.startswith("ingest"),
            cap_planned=True,  # every client is stopped after the same time
            image_of=image_of,
        )
        r.pop("timeline")
        r["annotations"] = ns.annotations
        print(summary(r), file=sys.stderr, flush=True)
        runs.append(r)
    return {
        "options": settings(REALISTIC),
        "ingest_rps": RPS,
        "annotations": ns.annotations,
        "cap_s": ns.cap,
        "notes": notes,
        "runs": runs,
    }


def markdown(out: dict[str, Any]) -> list[str]:
    """The table of ``coco_sdk.json``."""
    o = out["options"]
    return [
        *intro(
            out,
            f"{out['annotations']:,} annotations; server: {server(o)}; each client stopped at "
            f"{out['cap_s']:g} s." + "".join(f" {n}." for n in out["notes"]),
        ),
        *table(
            "client | boxes landed | rows/s | time (s) | peak RSS (MB) | CPU (s) | requests | "
            "throttled | rows lost | rows duplicated",
            "l" + "r" * 9,
            (
                [
                    client_name(r),
                    f"{r['rows_landed']:,}",
                    f"{r['rows_per_s']:,.1f}",
                    f"{r['elapsed_s']:.1f}",
                    f"{r['peak_rss_mb']:.1f}",
                    f"{r['cpu_s']:.1f}",
                    f"{r['requests']:,}",
                    f"{r['throttled']:,}",
                    fmt_lost(r),
                    f"{r['rows_duplicated']:,}",
                ]
                for r in out["runs"]
            ),
        ),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.coco_sdk", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--annotations", type=int, default=60_000)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds per client")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ns = parser.parse_args(args)
    started = time.monotonic()
    out: dict[str, Any] = {
        "provenance": provenance(shlex.join(["python", "-m", "benchmarks.coco_sdk", *args]))
    }
    with tempfile.TemporaryDirectory(prefix="coco-sdk-") as tmp:
        out.update(anyio.run(compare, ns, Path(tmp), backend="asyncio"))
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["failures"] = failures(("coco_sdk", r) for r in out["runs"])
    print("\n".join(markdown(out)))
    return finish(out, ns.out, "coco_sdk")


if __name__ == "__main__":
    raise SystemExit(main())
