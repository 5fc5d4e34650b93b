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

Each client runs under the benchmark suite's launcher (peak RSS ``ru_maxrss``, CPU
seconds) and is stopped at ``--cap`` seconds; rows/s is the boxes the sandbox stored over
the time the client ran. Prints a JSON line per client and a table. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from benchmarks.clients import ingest_upload
from benchmarks.common import APP, PAT, ROOT, USER
from benchmarks.harness import sandbox
from benchmarks.render import show
from benchmarks.suite import LAUNCHER

REALISTIC = ["--rps", "15", "--latency", "0.06", "--processing", "0.5", "2", "--no-store"]
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


def generate(size: int, folder: Path, seed: int = 5) -> Path:
    """A COCO file of ``size`` annotations over local images (written beside it)."""
    rng = random.Random(seed)
    images = max(1, size // 3)
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
                js.write(
                    f'{sep}{{"id": {ann}, "image_id": {rng.randrange(images)}, '
                    f'"category_id": {cat}, "bbox": [{x}, {y}, {w}, {h}], '
                    f'"area": {w * h:.1f}, "iscrowd": 0, "segmentation": []}}'
                )
                ann += 1
        js.write('\n], "categories": [\n')
        js.write(",\n".join(f'{{"id": {c}, "name": "class {c}"}}' for c in range(CATEGORIES)))
        js.write("\n]}\n")
    return path


def sdk_available() -> bool:
    probe = "import clarifai.client.dataset, pycocotools.coco"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def run(name: str, cmd: list[str], work: Path, cap: float) -> dict[str, Any]:
    """``cmd`` under the launcher against a fresh realistic sandbox, stopped at ``cap`` s."""
    work.mkdir(parents=True, exist_ok=True)
    usage = work / "usage.json"
    with sandbox(REALISTIC) as sb:
        full = [c.replace("{BASE}", sb.base_url) for c in cmd]
        started = time.monotonic()
        with (work / "stderr").open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", LAUNCHER, str(usage), *full],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            try:
                proc.wait(timeout=cap)
                capped = False
            except subprocess.TimeoutExpired:
                proc.terminate()  # the launcher kills the client and still reports
                proc.wait()
                capped = True
        ran = min(time.monotonic() - started, cap)
    used = json.loads(usage.read_text())
    stored = sb.stats.get("annotations_stored") or 0
    return {
        "client": name,
        "capped": capped,
        "ran_s": round(ran, 1),
        "peak_rss_mb": round((used["maxrss_kb"] or 0) / 1024, 1),
        "cpu_s": round(used["cpu_s"] or 0, 2),
        "boxes_stored": stored,
        "rows_per_s": round(stored / ran, 1) if ran else 0.0,
        "requests": sum((sb.stats.get("requests") or {}).values()),
        "throttled": sb.stats.get("throttled"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotations", type=int, default=60_000)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds per client")
    parser.add_argument("--out", type=Path, help="write coco_sdk.json here")
    ns = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="coco-sdk-") as tmp:
        folder = Path(tmp)
        print(f"generating {ns.annotations:,} annotations ...", file=sys.stderr)
        path = generate(ns.annotations, folder)
        ingest = ingest_upload(
            path,
            "{BASE}",
            "--no-progress",
            "--state",
            str(folder / "state"),
            "--failures",
            str(folder / "failures.csv"),
        )
        clients = [("ingest (CLI)", ingest)]
        if sdk_available():
            sdk = [sys.executable, "-c", SDK, str(folder / "images"), str(path), "{BASE}"]
            clients.append(("clarifai SDK (COCO loader)", [*sdk, PAT, USER, APP]))
        else:
            print("clarifai or pycocotools is not importable: SDK skipped", file=sys.stderr)
        for name, cmd in clients:
            print(f"running {name} ...", file=sys.stderr)
            got = run(name, cmd, folder / name.split()[0], ns.cap)
            got["annotations"] = ns.annotations
            print(json.dumps(got), flush=True)
            results.append(got)
    show(
        results,
        "client | boxes stored | rows/s | peak RSS MB | CPU s | requests | throttled",
        "l" + "r" * 6,
        lambda r: [
            f"{r['client']}{' (stopped at the cap)' if r['capped'] else ''}",
            f"{r['boxes_stored']:,}",
            f"{r['rows_per_s']:,}",
            r["peak_rss_mb"],
            r["cpu_s"],
            f"{r['requests']:,}",
            r["throttled"],
        ],
        ns.out,
        "coco_sdk",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
