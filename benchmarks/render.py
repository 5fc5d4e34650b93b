"""The suite's results as ``results.md``, ``results.json`` and the two plots; the
markdown tables and JSON files of the COCO runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import UNLIMITED_RPS
from benchmarks.targets import unplanned_deaths

__all__ = ["QUICK_CAVEAT", "markdown", "plots", "show", "table", "write_json", "write_results"]


def table(columns: str, align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table's lines: the header (``columns``: the names, `` | `` between them),
    the rule (``align``: a letter a column, ``l`` left or ``r`` right), then a line a row
    of cells."""
    rule = {"l": "---", "r": "---:"}
    return [f"| {columns} |", "|" + "|".join(rule[a] for a in align) + "|", *map(_cells, rows)]


def _cells(cells: Sequence[object]) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def write_json(directory: Path, name: str, data: Any) -> None:
    """``data`` as ``directory/NAME.json`` (the folder made if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


def show(
    results: list[dict[str, Any]],
    columns: str,
    align: str,
    cells: Callable[[dict[str, Any]], Sequence[object]],
    out: Path | None,
    name: str,
) -> None:
    """Print ``results`` as a markdown table after a blank line (a row a result: its
    ``cells``) and, given ``out``, write them to ``out/NAME.json``."""
    print("\n" + "\n".join(table(columns, align, map(cells, results))))
    if out is not None:
        write_json(out, name, results)


def _fmt_lost(r: dict[str, Any]) -> str:
    return "n/a (capped)" if r["capped"] else str(r.get("rows_lost"))


def _images(r: dict[str, Any]) -> str:
    """A memory run's images: as its client reported them, else as the sandbox stored them."""
    images = r["client_report"]["images"] if r.get("client_report") else r["inputs_stored"]
    return f"{images:,}"


def _name(r: dict[str, Any]) -> str:
    if r.get("unplanned_death"):
        return f"{r['client']} (**died from {r['unplanned_death']}**)"
    return f"{r['client']} (capped at {r['cap_s']:.0f} s)" if r["capped"] else r["client"]


QUICK_CAVEAT = (
    "Quick scale is for development: its files are small, so start-up and the last "
    "inputs' processing weigh far more than in a real upload; the targets are judged at "
    "full scale only (`make bench`)."
)


def markdown(out: dict[str, Any]) -> str:
    sc = out["scenarios"]
    m = out["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{out['command']}` (from the repository root; `make "
        f"{'bench-quick' if out['scale'] == 'quick' else 'bench'}` runs the same). "
        f"Scale: {out['scale']}. Whole run: {out['wall_s'] / 60:.1f} min.",
        "",
        *_failures(out),
        *([QUICK_CAVEAT, ""] if out["scale"] == "quick" else []),
        f"Machine: {m['cpus']} cores, Python {m['python']}, {m['platform']}, {m['date']}. "
        "The sandbox runs in the harness process and each client in its own subprocess, on "
        "the same 2 cores: figures are ratios between clients measured the same way, not "
        "absolute speeds of Clarifai.",
        "",
        "Rows landed, duplicated and lost are counted on the server: a row landed is a "
        "distinct box stored on an input that exists; duplicated = stored inputs beyond one "
        "per distinct image + stored annotations beyond one per distinct (image, box); lost = "
        "boxes of images that download fine (and are not stuck) that did not land. Peers that "
        "do not finish within the cap are stopped; their rows/s is rows landed within the cap "
        "divided by the cap (client start-up included, as for every client), and rows lost "
        "cannot be judged (n/a).",
        "",
    ]
    real = sc.get("realistic")
    if real:
        o = real["options"]
        lines += [
            "## Realistic",
            "",
            f"Server: {o['rps']:g} requests/s per key, {o['latency'] * 1000:.0f} ms latency, "
            f"processing {o['processing'][0]}-{o['processing'][1]} s, "
            f"{o['download_failure_rate'] * 100:g} % download failures. Data: "
            f"{real['data']['rows']:,} rows (boxes) on {real['data']['images']:,} images; "
            f"{real['good_rows']:,} rows on images that download fine. Ceiling: "
            f"{real['ceiling_requests']} requests at 128 items per call = "
            f"{real['ceiling_rows_per_s']} rows/s. Every client gets the same file; ingest "
            "runs with `--rps 15`.",
            "",
            *_ceiling_text(real),
            "",
            *table(
                "client | rows/s | fraction of ceiling | requests | throttled replies | "
                "rows landed | rows lost | rows duplicated | time (s) | CPU (s) | peak RSS (MB)",
                "l" + "r" * 10,
                (
                    [
                        _name(r),
                        f"{r['rows_per_s']:.1f}",
                        f"{r['ceiling_fraction'] * 100:.1f} %",
                        f"{r['requests']:,}",
                        f"{r['throttled']:,}",
                        f"{r['rows_landed']:,}",
                        _fmt_lost(r),
                        f"{r['rows_duplicated']:,}",
                        f"{r['elapsed_s']:.1f}",
                        f"{r['cpu_s']:.1f}",
                        f"{r['peak_rss_mb']:.0f}",
                    ]
                    for r in real["results"]
                ),
            ),
            "",
            "Fraction of ceiling = rows/s / ceiling rows/s (for a client that landed every "
            "row, that is the ceiling's requests / (15 x elapsed)). The SDK peer sends each "
            "URL's bytes as the image (the SDK cannot send URLs for detection data), so the "
            "sandbox draws its 1 % download failures from other images; its rows lost are "
            "judged against its own set.",
            "",
            "First row landed (the first 0.5 s sample of the sandbox with an annotation "
            "stored): "
            + "; ".join(
                f"{r['client']} "
                + ("none" if r.get("first_row_s") is None else f"{r['first_row_s']:g} s")
                for r in real["results"]
            )
            + ".",
            "",
            "![rows landed over time](realistic.png)",
            "",
        ]
    unt = sc.get("unthrottled")
    if unt:
        f = unt["floor"]
        lines += [
            "## Unthrottled",
            "",
            f"Server: no rate limit, no latency, processing "
            f"{unt['options']['processing'][0]}-{unt['options']['processing'][1]} s. Data: "
            f"{unt['data']['rows']:,} rows on {unt['data']['images']:,} images. ingest runs "
            f"with `--rps {UNLIMITED_RPS:g}` (its limiter off, in effect). Floor (parse the "
            f"CSV and build and serialise the protos, `python -m benchmarks.floor`): "
            f"{f['cpu_s']:.2f} CPU s for the whole process ({f['cpu_s_parse_only']:.2f} s of "
            f"it parsing), {f['cpu_s_per_100k_rows']:.2f} s per 100k rows. CPU is each "
            "process's own user+system time from `wait4`, interpreter start-up and imports "
            f"included on both sides. The floor and each ingest client ran "
            f"{unt.get('repeats', 1)} times, in turn (the floor, then each ingest client, "
            "then the floor again...): the floor's CPU s, its parsing share and its CPU s per "
            "100k rows are medians of its runs; an ingest client's CPU s per 100k rows is the "
            "median of its runs' values, and its other figures (rows/s, time, CPU s, peak "
            "RSS) are those of its run of median CPU s; x floor is not a ratio of those "
            "medians but the median of the paired ratios: each run's CPU s per 100k rows over "
            "the floor's run made just before it. A peer stopped at the cap runs once: its x "
            "floor is its CPU s per 100k rows over the floor's median.",
            "",
            *table(
                "client | rows/s | rows landed | time (s) | CPU (s) | CPU s per 100k rows | "
                "x floor | rows lost | rows duplicated | peak RSS (MB)",
                "l" + "r" * 9,
                (
                    [
                        _name(r),
                        f"{r['rows_per_s']:,.0f}",
                        f"{r['rows_landed']:,}",
                        f"{r['elapsed_s']:.1f}",
                        f"{r['cpu_s']:.1f}",
                        f"{r['cpu_s_per_100k_rows']:.2f}",
                        f"{r['cpu_vs_floor']:.2f}",
                        _fmt_lost(r),
                        f"{r['rows_duplicated']:,}",
                        f"{r['peak_rss_mb']:.0f}",
                    ]
                    for r in unt["results"]
                ),
            ),
            "",
            "For a capped peer, CPU per 100k rows is over the rows it landed before the cap.",
            "",
            *_collector_text(unt.get("collector") or {}),
        ]
    mem = sc.get("memory")
    if mem:
        lines += [
            "## Memory",
            "",
            "ingest through its public API (`python -m benchmarks.run_ingest`), unthrottled "
            "sandbox keeping ids only. Peak RSS is the client process's `ru_maxrss`.",
            "",
            *table(
                "rows | order | images | rows landed | time (s) | rows/s | CPU (s) | peak RSS (MB)",
                "rl" + "r" * 6,
                (
                    [
                        f"{r['rows']:,}",
                        r.get("order", "grouped"),
                        _images(r),
                        f"{r['rows_landed']:,}",
                        f"{r['elapsed_s']:.1f}",
                        f"{r['rows_per_s']:,.0f}",
                        f"{r['cpu_s']:.1f}",
                        f"{r['peak_rss_mb']:.1f}",
                    ]
                    for r in mem["results"]
                ),
            ),
            "",
            "![peak RSS against rows](memory.png)",
            "",
        ]
    hos = sc.get("hostile")
    if hos:
        o = hos["options"]
        lines += [
            "## Hostile",
            "",
            f"Server: {o['rps']:g} requests/s (the clients are set to 15), "
            f"{o['unavailable_rate'] * 100:g} % UNAVAILABLE, {o['lost_reply_rate'] * 100:g} % "
            f"lost replies (the write happens, the reply does not arrive), "
            f"{o['download_failure_rate'] * 100:g} % download failures, "
            f"{o['stuck_rate'] * 100:g} % inputs that never finish processing, "
            f"{o['spike_rate'] * 100:g} % latency spikes of {o['spike_seconds']:g} s, latency "
            f"{o['latency'] * 1000:.0f} +/- {o['latency_jitter'] * 1000:.0f} ms. Data: "
            f"{hos['data']['rows']:,} rows on {hos['data']['images']:,} images.",
            "",
            *table(
                "client | rows landed | rows expected | rows lost | rows duplicated | "
                "inputs duplicated | annotations duplicated | requests | throttled | time (s)",
                "l" + "r" * 9,
                (
                    [
                        _name(r),
                        f"{r['rows_landed']:,}",
                        f"{r['rows_expected']:,}",
                        _fmt_lost(r),
                        f"{r['rows_duplicated']:,}",
                        f"{r['inputs_duplicated']:,}",
                        f"{r['annotations_duplicated']:,}",
                        f"{r['requests']:,}",
                        f"{r['throttled']:,}",
                        f"{r['elapsed_s']:.1f}",
                    ]
                    for r in hos["results"]
                ),
            ),
            "",
            "Rows expected excludes boxes on images that fail to download and on inputs that "
            "never finish processing (no client can land those).",
            "",
        ]
    met = {True: "met", False: "**missed**", None: "n/a"}
    lines += [
        "## Targets (ingest through its public API)",
        "",
        *table(
            "target | value | goal | met | margin",
            "lrlll",
            (
                [
                    t["target"],
                    "" if t["value"] is None else t["value"],
                    t["goal"],
                    met[t["met"]],
                    t["margin"],
                ]
                for t in out["targets"]
            ),
        ),
    ]
    if out.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in out["notes"]]
    return "\n".join(lines) + "\n"


def _failures(out: dict[str, Any]) -> list[str]:
    deaths = unplanned_deaths(out)
    if not deaths:
        return []
    return [
        "## **RUN FAILED: a client died from a signal nobody sent**",
        "",
        "The harness restarts a client only after the kills it planned (hostile scenario); "
        "these runs died otherwise (a crash, the OOM killer) and were not restarted, so "
        "their figures cover a run cut short:",
        "",
        *[f"- **{d}**" for d in deaths],
        "",
    ]


def _ceiling_text(real: dict[str, Any]) -> list[str]:
    if "ceiling_rows" not in real:
        return []
    rps = real["options"]["rps"]
    burst = real["ceiling_burst_requests"]
    best = real["ceiling_rows_per_s_with_burst"]
    return [
        f"The ceiling counts {real['ceiling_rows']:,} rows, the rows on images that "
        f"download fine, not the file's {real['data']['rows']:,}: 2 x ceil("
        f"{real['data']['images']:,} images / 128) + ceil({real['ceiling_rows']:,} rows / "
        f"128) = {real['ceiling_requests']} requests (every image is created and checked, "
        f"only the boxes of images that download are annotated), and {rps:g} x "
        f"{real['ceiling_rows']:,} / {real['ceiling_requests']} = "
        f"{real['ceiling_rows_per_s']} rows/s ({rps:g} requests/s).",
        "The sandbox's token bucket starts full: a client gets its first second's "
        f"{burst} requests at once, so "
        + (
            f"the most it can reach is {rps:g} x {real['ceiling_rows']:,} / "
            f"({real['ceiling_requests']} - {burst}) = {best} rows/s, "
            f"{best / real['ceiling_rows_per_s'] * 100:.1f} % of the ceiling"
            if best is not None
            else "a client can send every request the data needs in that burst"
        )
        + "; a fraction above 100 % is that burst, not a client beating the budget.",
    ]


def _collector_text(collector: dict[str, Any]) -> list[str]:
    timed = [(k, v) for k, v in collector.items() if isinstance(v, dict)]
    if not timed:
        return []
    parts = [
        f"{name} {v['gc_s']:.2f} s of {v['cpu_s']:.2f} s CPU ({v['gc_share'] * 100:.1f} %)"
        for name, v in timed
        if v.get("gc_s") is not None and v.get("gc_share") is not None
    ]
    text = (
        "Python's cycle collector: one more run of each ingest client on the same file with "
        "the collector's CPU seconds added up (`python -m benchmarks.gctime`, a "
        "`gc.callbacks` hook; the command line raises the collector's threshold after "
        "`gc.freeze()`, the library leaves it alone): " + "; ".join(parts) + "."
    )
    if "saving_share" in collector:
        text += (
            " What the command line's collector settings save, as a share of the API "
            "client's CPU: (API's collector s - CLI's collector s) / API's CPU s = "
            f"{collector['saving_share'] * 100:.1f} %."
        )
    return [text, ""]


def plots(out: dict[str, Any], directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = out["scenarios"].get("realistic")
    if real:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
        for r in real["results"]:
            xs = [t for t, _ in r["timeline"]]
            ys = [n for _, n in r["timeline"]]
            ax.plot(xs, ys, label=_name(r))
        ax.axhline(real["good_rows"], color="grey", lw=0.8, ls=":", label="rows to land")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("annotations stored (rows landed)")
        o = real["options"]
        ax.set_title(
            f"Realistic: {o['rps']:g} req/s, {o['latency'] * 1000:.0f} ms, processing "
            f"{o['processing'][0]}-{o['processing'][1]} s, {real['data']['rows']:,} rows"
        )
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(directory / "realistic.png")
        plt.close(fig)
    mem = out["scenarios"].get("memory")
    if mem and mem["results"]:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        top = 0.0
        for order in ("grouped", "shuffled"):
            runs = [r for r in mem["results"] if r.get("order", "grouped") == order]
            if runs:
                ys = [r["peak_rss_mb"] for r in runs]
                top = max(top, *ys)
                ax.plot([r["rows"] for r in runs], ys, marker="o", label=f"ingest (API), {order}")
        ax.axhline(150, color="red", lw=0.8, ls="--", label="target 150 MB")
        ax.set_xscale("log")
        ax.set_ylim(0, max(160, top * 1.1))
        ax.set_xlabel("rows in the CSV")
        ax.set_ylabel("client peak RSS (MB)")
        ax.set_title("Memory: peak RSS against rows")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(directory / "memory.png")
        plt.close(fig)


def write_results(out: dict[str, Any], directory: Path) -> None:
    write_json(directory, "results", out)
    (directory / "results.md").write_text(markdown(out))
    plots(out, directory)
