"""Peak RSS and CPU of ``ingest upload`` on generated COCO files, against the same boxes as CSV.

::

    python -m benchmarks.coco_memory                        # 100k and 5M annotations
    python -m benchmarks.coco_memory --sizes 100000 1000000 --out /tmp/coco-mem

For each size it writes a COCO file (three annotations per image on average, ordered
by category as COCO files are, each with a small polygon segmentation, 80 categories,
images by URL) and the same boxes as a seed CSV, then uploads each with the command
line (``--no-progress``, a budget of 100,000 requests/s, an unthrottled sandbox in its
own process keeping ids only) under the same launcher as the benchmark suite, which
reports the client's peak RSS (``ru_maxrss``) and CPU seconds. Prints one JSON line per
run and a table at the end; ``--out DIR/coco_memory.json`` keeps them. Not a timed
test: run it by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.audit import ceiling
from benchmarks.clients import ingest_upload
from benchmarks.common import ROOT
from benchmarks.harness import sandbox
from benchmarks.render import show, write_json
from benchmarks.suite import LAUNCHER

CATEGORIES = 80
WIDTH, HEIGHT = 640, 480


def generate(size: int, folder: Path, seed: int = 5) -> tuple[Path, Path]:
    """A COCO file of ``size`` annotations and a CSV of the same boxes (streamed out)."""
    rng = random.Random(seed)
    images = max(1, size // 3)
    coco_path = folder / f"coco-{size}.json"
    csv_path = folder / f"coco-{size}.csv"
    with coco_path.open("w") as js, csv_path.open("w") as cs:
        cs.write("url,left_col,top_row,right_col,bottom_row,pos_concepts\n")
        js.write('{"info": {"description": "generated"}, "images": [\n')
        for i in range(images):
            sep = ",\n" if i else ""
            js.write(
                f'{sep}{{"id": {i}, "file_name": "{i}.jpg", "width": {WIDTH}, '
                f'"height": {HEIGHT}, "coco_url": "https://images.example.com/{i}.jpg"}}'
            )
        js.write('\n], "annotations": [\n')
        ann = 0
        for cat in range(CATEGORIES):  # ordered by category, as COCO files are
            count = size // CATEGORIES + (1 if cat < size % CATEGORIES else 0)
            for _ in range(count):
                image = rng.randrange(images)
                x, y = round(rng.uniform(0, 500), 2), round(rng.uniform(0, 380), 2)
                w, h = round(rng.uniform(10, 130), 2), round(rng.uniform(10, 90), 2)
                seg = ", ".join(f"{v:.2f}" for v in (x, y, x + w, y, x + w, y + h, x, y + h))
                sep = ",\n" if ann else ""
                js.write(
                    f'{sep}{{"id": {ann}, "image_id": {image}, "category_id": {cat}, '
                    f'"bbox": [{x}, {y}, {w}, {h}], "area": {w * h:.1f}, "iscrowd": 0, '
                    f'"segmentation": [[{seg}]]}}'
                )
                ann += 1
                box = (x / WIDTH, y / HEIGHT, (x + w) / WIDTH, (y + h) / HEIGHT)
                cs.write(
                    f"https://images.example.com/{image}.jpg,{box[0]!r},{box[1]!r},"
                    f"{box[2]!r},{box[3]!r},class-{cat}\n"
                )
        js.write('\n], "categories": [\n')
        js.write(",\n".join(f'{{"id": {c}, "name": "class {c}"}}' for c in range(CATEGORIES)))
        js.write("\n]}\n")
    return coco_path, csv_path


UNTHROTTLED = ["--rps", "0", "--processing", "0.05", "0.2", "--no-store"]
REALISTIC = [
    "--rps",
    "15",
    "--latency",
    "0.06",
    "--processing",
    "0.5",
    "2",
    "--download-failure-rate",
    "0.01",
    "--no-store",
]


def upload(
    data: Path, work: Path, *, server: list[str] = UNTHROTTLED, rps: str = "100000"
) -> dict[str, Any]:
    """``ingest upload`` under the launcher against a fresh sandbox (``server``'s options)."""
    work.mkdir(parents=True, exist_ok=True)
    with sandbox(server) as sb:
        report = work / "report.json"
        cmd = ingest_upload(
            data,
            sb.base_url,
            "--no-progress",
            "--rps",
            rps,
            "--state",
            str(work / "state"),
            "--failures",
            str(work / "failures.csv"),
            "--report-json",
            str(report),
            "--tmp-dir",
            str(work / "tmp"),
        )
        usage = work / "usage.json"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, str(usage), *cmd],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"launcher failed: {proc.stderr[-2000:]}")
    used = json.loads(usage.read_text())
    rep = json.loads(report.read_text()) if report.exists() else {}
    return {
        "exit_status": used["status"] >> 8,
        "peak_rss_mb": round(used["maxrss_kb"] / 1024, 1),
        "cpu_s": round(used["cpu_s"], 2),
        "rows_read": rep.get("rows_read"),
        "annotations_created": rep.get("annotations_created"),
        "elapsed_s": rep.get("elapsed_s"),
        "wall_s": round(wall, 2),
        "server_annotations_stored": sb.stats.get("annotations_stored"),
        "server_requests": sum((sb.stats.get("requests") or {}).values()),
        "server_throttled": sb.stats.get("throttled"),
    }


def realistic(size: int, folder: Path) -> dict[str, Any]:
    """The realistic scenario (15 requests/s, 60 ms, processing 0.5-2 s, 1 % download
    failures) from a COCO file of ``size`` annotations: rows/s against the ceiling."""
    coco_path, _ = generate(size, folder)
    got = upload(coco_path, folder / "realistic", server=REALISTIC, rps="15")
    images = max(1, size // 3)
    landed = got["server_annotations_stored"] or 0
    limit = ceiling(images, landed, 15.0)
    rate = landed / got["wall_s"]
    got.update(
        kind="coco (realistic)",
        annotations=size,
        images=images,
        rows_per_s=round(rate, 1),
        ceiling_rows_per_s=round(limit.rows_per_s, 1),
        fraction_of_ceiling=limit.fraction(rate),
    )
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 5_000_000])
    parser.add_argument("--out", type=Path, help="write coco_memory.json here")
    parser.add_argument("--skip-csv", action="store_true", help="COCO runs only")
    parser.add_argument(
        "--realistic",
        type=int,
        metavar="N",
        help="only the realistic scenario from a COCO file of N annotations (N / 3 images)",
    )
    ns = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="coco-mem-") as tmp:
        folder = Path(tmp)
        if ns.realistic:
            got = realistic(ns.realistic, folder)
            print(json.dumps(got), flush=True)
            if ns.out is not None:
                write_json(ns.out, "coco_realistic", got)
            return 0
        for size in ns.sizes:
            print(f"generating {size:,} annotations ...", file=sys.stderr)
            coco_path, csv_path = generate(size, folder)
            mb = coco_path.stat().st_size / 1e6
            runs = [("coco", coco_path)] + ([] if ns.skip_csv else [("csv", csv_path)])
            for kind, path in runs:
                print(f"uploading {kind} ({mb:,.0f} MB COCO file) ...", file=sys.stderr)
                got = upload(path, folder / f"{kind}-{size}")
                got.update(kind=kind, annotations=size, coco_mb=round(mb, 1))
                if got["cpu_s"] is not None:
                    got["cpu_s_per_100k"] = round(got["cpu_s"] * 100_000 / size, 2)
                print(json.dumps(got), flush=True)
                results.append(got)
            coco_path.unlink()
            csv_path.unlink()
    show(
        results,
        "input | annotations | peak RSS MB | CPU s | CPU s per 100k",
        "lrrrr",
        lambda r: [
            r["kind"],
            f"{r['annotations']:,}",
            r["peak_rss_mb"],
            r["cpu_s"],
            r.get("cpu_s_per_100k"),
        ],
        ns.out,
        "coco_memory",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
