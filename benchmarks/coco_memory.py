"""Peak RSS and CPU of ``ingest upload`` on generated COCO files, against the same boxes as CSV.

::

    python -m benchmarks.coco_memory                        # 100k and 5M annotations
    python -m benchmarks.coco_memory --sizes 100000 1000000 --out /tmp/coco-mem
    python -m benchmarks.coco_memory --realistic 60000      # the realistic scenario

For each size it writes a COCO file (three annotations per image on average, ordered
by category as COCO files are, each with a small polygon segmentation, 80 categories,
images by URL) and the same boxes as a seed CSV, then uploads each with the command
line (``--no-progress``, ``--rps 10000``, a sandbox without limit keeping ids only) under
the suite's launcher (:func:`benchmarks.runner.run_client`: peak RSS ``ru_maxrss``, CPU
seconds, the server's counts). ``--pairs N`` runs N pairs (COCO, then CSV) of each size
up to 1M annotations (bigger ones once); the COCO file's CPU against the CSV's is the
median of the pairs' ratios. Writes ``coco_memory.json`` into ``--out``
(``benchmarks/results/``).

``--realistic N``: the realistic scenario (15 requests/s, 60 ms, processing 0.5-2 s, 1 %
download failures) from a COCO file of N annotations: rows/s against the request-budget
ceiling, built from the boxes that can land (:func:`benchmarks.data.good_rows`: the
file's boxes on images the sandbox downloads), never from what landed. Writes
``coco_realistic.json``.

Every run must finish, exit as expected and land every box that can land exactly once;
if one does not, the results say so and the command exits 1.
"""

from __future__ import annotations

import argparse
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.audit import ceiling
from benchmarks.clients import ingest_cli
from benchmarks.common import FULL_SPEED_RPS, RESULTS, provenance
from benchmarks.data import Data, box_key, good_rows
from benchmarks.render import ceiling_text, client_name, fmt_lost, intro, server, table
from benchmarks.runner import run_client, settings, summary
from benchmarks.verdict import failures, finish
from ingest.sandbox import SandboxOptions

__all__ = ["generate", "main", "markdown", "markdown_realistic", "write"]

CATEGORIES = 80
WIDTH, HEIGHT = 640, 480
URL = "https://images.example.com/{}.jpg"

UNTHROTTLED = SandboxOptions(rps=0, processing=(0.05, 0.2), store=False, seed=2)
REALISTIC = SandboxOptions(
    rps=15, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01, seed=1
)


def generate(size: int, folder: Path, seed: int = 5) -> tuple[Path, Path]:
    """A COCO file of ``size`` annotations and a CSV of the same boxes (streamed out)."""
    coco_path, data = write(size, folder, seed)
    return coco_path, data.path


def write(size: int, folder: Path, seed: int = 5, *, index: bool = False) -> tuple[Path, Data]:
    """:func:`generate`, with the CSV's :class:`Data`: each image's boxes (``index``) or
    only their number."""
    rng = random.Random(seed)
    images = max(1, size // 3)
    coco_path = folder / f"coco-{size}.json"
    csv_path = folder / f"coco-{size}.csv"
    data = Data(csv_path, {"rows": size, "images": images})
    if not index:
        data.per_image = bytearray(images)
    with coco_path.open("w") as js, csv_path.open("w") as cs:
        cs.write("url,left_col,top_row,right_col,bottom_row,pos_concepts\n")
        js.write('{"info": {"description": "generated"}, "images": [\n')
        for i in range(images):
            sep = ",\n" if i else ""
            js.write(
                f'{sep}{{"id": {i}, "file_name": "{i}.jpg", "width": {WIDTH}, '
                f'"height": {HEIGHT}, "coco_url": "{URL.format(i)}"}}'
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
                    f"{URL.format(image)},{box[0]!r},{box[1]!r},{box[2]!r},{box[3]!r},class-{cat}\n"
                )
                if data.per_image is not None:
                    data.per_image[image] += 1
                else:
                    data.boxes.setdefault(URL.format(image), set()).add(box_key(box))
        js.write('\n], "categories": [\n')
        js.write(",\n".join(f'{{"id": {c}, "name": "class {c}"}}' for c in range(CATEGORIES)))
        js.write("\n]}\n")
    return coco_path, data


async def upload(
    name: str, path: Path, data: Data, work: Path, options: SandboxOptions, rps: float
) -> dict[str, Any]:
    """``ingest upload PATH`` against a fresh sandbox of ``options``, judged."""
    await anyio.Path(work).mkdir(parents=True, exist_ok=True)
    command = ingest_cli(path, rps, work, "--tmp-dir", str(work))
    good = good_rows(data, options)
    r = await run_client(
        name,
        command,
        options,
        data,
        cap=3600.0,
        expect_exit=0 if good == data.rows else 1,  # boxes on failed downloads fail
    )
    r.pop("timeline")
    print(summary(r), file=sys.stderr, flush=True)
    return r


async def sizes(ns: argparse.Namespace, folder: Path) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    ratios: dict[int, list[float]] = {}
    for size in ns.sizes:
        print(f"generating {size:,} annotations ...", file=sys.stderr, flush=True)
        coco_path, data = write(size, folder)
        mb = coco_path.stat().st_size / 1e6
        for pair in range(ns.pairs if size <= 1_000_000 else 1):
            kinds = [("coco", coco_path)] + ([] if ns.skip_csv else [("csv", data.path)])
            cpu: dict[str, float] = {}
            for kind, path in kinds:
                print(f"uploading {kind} ({mb:,.0f} MB COCO file) ...", file=sys.stderr)
                r = await upload(
                    f"ingest (CLI), {kind}",
                    path,
                    data,
                    folder / f"{kind}-{size}-{pair}",
                    UNTHROTTLED,
                    FULL_SPEED_RPS,
                )
                r.update(kind=kind, annotations=size, coco_mb=round(mb, 1), pair=pair)
                r["cpu_s_per_100k"] = round(r["cpu_s"] * 100_000 / size, 2)
                cpu[kind] = r["cpu_s"]
                runs.append(r)
            if cpu.get("csv"):
                ratios.setdefault(size, []).append(cpu["coco"] / cpu["csv"])
        coco_path.unlink()
        data.path.unlink()
    return {
        "options": settings(UNTHROTTLED),
        "ingest_rps": FULL_SPEED_RPS,
        "runs": runs,
        "coco_vs_csv_cpu": {
            str(size): {
                "median": round(statistics.median(r), 2),
                "ratios": [round(x, 2) for x in r],
            }
            for size, r in ratios.items()
        },
    }


async def realistic(size: int, folder: Path) -> dict[str, Any]:
    """The realistic scenario from a COCO file of ``size`` annotations: rows/s against the
    ceiling of the boxes that can land."""
    coco_path, data = write(size, folder, index=True)
    good = good_rows(data, REALISTIC)
    rps = float(REALISTIC.rps or 0)
    limit = ceiling(data.inputs, good, rps)
    r = await upload("ingest (CLI)", coco_path, data, folder / "realistic", REALISTIC, rps)
    r["ceiling_fraction"] = limit.fraction(r["rows_per_s"])
    return {
        "options": settings(REALISTIC),
        "ingest_rps": rps,
        "annotations": size,
        "data": data.counts,
        "good_rows": good,
        **limit.to_dict(),
        "runs": [r],
    }


def markdown(out: dict[str, Any]) -> list[str]:
    """The table of ``coco_memory.json``."""
    by_size = out["coco_vs_csv_cpu"]
    return [
        *intro(out),
        *table(
            "input | annotations | COCO file (MB) | peak RSS (MB) | CPU (s) | CPU s per 100k | "
            "rows lost | rows duplicated",
            "lrrrrrrr",
            (
                [
                    client_name(r),
                    f"{r['annotations']:,}",
                    f"{r['coco_mb']:,}",
                    f"{r['peak_rss_mb']:.1f}",
                    f"{r['cpu_s']:.1f}",
                    f"{r['cpu_s_per_100k']:.2f}",
                    fmt_lost(r),
                    f"{r['rows_duplicated']:,}",
                ]
                for r in out["runs"]
            ),
        ),
        "",
        *(
            [
                "CPU of the COCO file against the same boxes as a CSV (median of the pairs' "
                "ratios, each pair run one after the other): "
                + "; ".join(
                    f"{int(size):,} annotations {v['median']:.2f} ({len(v['ratios'])} pairs: "
                    f"{', '.join(f'{x:.2f}' for x in v['ratios'])})"
                    for size, v in by_size.items()
                )
                + ".",
                "",
            ]
            if by_size
            else []
        ),
    ]


def markdown_realistic(out: dict[str, Any]) -> list[str]:
    """The figures of ``coco_realistic.json``."""
    [r] = out["runs"]
    o = out["options"]
    return [
        *intro(out),
        f"{out['annotations']:,} annotations on {out['data']['images']:,} images; server: "
        f"{server(o)}; `ingest upload` with "
        f"`--rps {out['ingest_rps']:g}`: {client_name(r)} landed {r['rows_landed']:,} boxes at "
        f"{r['rows_per_s']:,.1f} rows/s, {r['ceiling_fraction'] * 100:.1f} % of the ceiling "
        f"({out['ceiling_rows_per_s']:,} rows/s), in {r['requests']:,} requests with "
        f"{r['throttled']:,} throttled replies; rows lost {r['rows_lost']}, duplicated "
        f"{r['rows_duplicated']}.",
        "",
        *ceiling_text(out, "boxes"),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.coco_memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 5_000_000])
    parser.add_argument("--pairs", type=int, default=3, help="pairs of runs up to 1M (3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--skip-csv", action="store_true", help="COCO runs only")
    parser.add_argument(
        "--realistic",
        type=int,
        metavar="N",
        help="only the realistic scenario from a COCO file of N annotations (N / 3 images)",
    )
    ns = parser.parse_args(args)
    started = time.monotonic()
    out: dict[str, Any] = {
        "provenance": provenance(shlex.join(["python", "-m", "benchmarks.coco_memory", *args]))
    }
    with tempfile.TemporaryDirectory(prefix="coco-mem-") as tmp:
        folder = Path(tmp)
        if ns.realistic:
            out.update(anyio.run(realistic, ns.realistic, folder, backend="asyncio"))
            name = "coco_realistic"
        else:
            out.update(anyio.run(sizes, ns, folder, backend="asyncio"))
            name = "coco_memory"
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["failures"] = failures(("coco", r) for r in out["runs"])
    print("\n".join(markdown_realistic(out) if ns.realistic else markdown(out)))
    return finish(out, ns.out, name)


if __name__ == "__main__":
    raise SystemExit(main())
