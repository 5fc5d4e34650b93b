"""The suite's results as ``results.md``, ``results.json`` and the two plots, and the
markdown helpers every benchmark's tables use.

Every figure and every setting a sentence states (cores, request budgets, failure rates,
sizes, run times) is read from the results, never written here as fixed text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.targets import RSS_MB
from benchmarks.verdict import write_json

__all__ = [
    "QUICK_CAVEAT",
    "body",
    "ceiling_text",
    "client_name",
    "failed_block",
    "fmt_lost",
    "intro",
    "load",
    "markdown",
    "plots",
    "provenance_line",
    "server",
    "table",
    "write_results",
]


def table(columns: str, align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table's lines: the header (``columns``: the names, `` | `` between them),
    the rule (``align``: a letter a column, ``l`` left or ``r`` right), then a line a row
    of cells."""
    rule = {"l": "---", "r": "---:"}
    return [f"| {columns} |", "|" + "|".join(rule[a] for a in align) + "|", *map(_cells, rows)]


def _cells(cells: Sequence[object]) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def fmt_lost(r: dict[str, Any]) -> str:
    """A run's rows lost, or why they cannot be judged."""
    return "n/a (capped)" if r["capped"] else f"{r.get('rows_lost'):,}"


def client_name(r: dict[str, Any]) -> str:
    """A run's client, with why the run does not count, or that a cap stopped it."""
    if r.get("problems"):
        return f"{r['client']} (**does not count: {'; '.join(r['problems'])}**)"
    return f"{r['client']} (capped at {r['cap_s']:.0f} s)" if r["capped"] else r["client"]


def _pct(rate: float) -> str:
    return f"{rate * 100:g} %"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


QUICK_CAVEAT = (
    "Quick scale is for development: its files are small, so start-up and the last "
    "inputs' processing weigh far more than in a real upload; the targets are judged at "
    "full scale only."
)


def provenance_line(out: dict[str, Any]) -> str:
    """Where a results file comes from: command, commit, machine, date, run time."""
    p = out["provenance"]
    m = p["machine"]
    commit = p.get("commit") or "unknown"
    dirty = " plus uncommitted changes" if p.get("uncommitted_changes") else ""
    took = f" Whole run: {_minutes(out['wall_s'])}." if "wall_s" in out else ""
    return (
        f"`{p['command']}` at commit `{commit[:12]}`{dirty}, {m['date']}; {m['cpus']} cores, "
        f"Python {m['python']}, {m['platform']}.{took}"
    )


def failed_block(failures: Sequence[str], level: int = 2) -> list[str]:
    """The loud opening of a run in which a run did not count."""
    if not failures:
        return []
    return [
        f"{'#' * level} **RUN FAILED: some runs do not count**",
        "",
        "These runs died from a signal nobody sent, exited with a status nobody expected, "
        "or (an ingest client) lost or duplicated rows or reached their cap; the figures "
        "they enter are not met, whatever their value:",
        "",
        *[f"- **{line}**" for line in failures],
        "",
    ]


def intro(out: dict[str, Any], *paragraphs: str) -> list[str]:
    """The opening of a benchmark's section: where its results come from, the runs that do
    not count (loudly), then ``paragraphs``, each followed by a blank line."""
    lines = [f"From {provenance_line(out)}", "", *failed_block(out.get("failures", []), 3)]
    for p in paragraphs:
        lines += [p, ""]
    return lines


def markdown(out: dict[str, Any]) -> str:
    """``results.md``: the whole suite run."""
    return "\n".join(["# Benchmark results", "", *body(out, level=2)]) + "\n"


def body(out: dict[str, Any], level: int) -> list[str]:
    """The suite's sections, their headings at ``level``."""
    sc = out["scenarios"]
    h = "#" * level
    cpus = out["provenance"]["machine"]["cpus"]
    times = ", ".join(f"{name} {_minutes(s['wall_s'])}" for name, s in sc.items() if "wall_s" in s)
    lines = [
        f"From {provenance_line(out)} Scale: {out['scale']}" + (f" ({times})." if times else "."),
        "",
        *failed_block(out.get("failures", []), level),
        *([QUICK_CAVEAT, ""] if out["scale"] == "quick" else []),
        "The sandbox runs in the harness process and each client in its own subprocess, on "
        f"the same {cpus} cores: figures are ratios between clients measured the same way, "
        "not absolute speeds of Clarifai.",
        "",
        "Rows landed, duplicated and lost are counted on the server against the file read "
        "apart from ingest: a row landed is a distinct box stored on an input that exists; "
        "duplicated = stored inputs beyond one per distinct image + stored annotations "
        "beyond one per distinct (image, box); lost = boxes of images that download fine "
        "(and are not stuck) that did not land. Peers that do not finish within the cap "
        "are stopped; their rows/s is rows landed within the cap divided by the cap (client "
        "start-up included, as for every client), and rows lost cannot be judged (n/a).",
        "",
    ]
    if "realistic" in sc:
        lines += [f"{h} Realistic", "", *_realistic(sc["realistic"])]
    if "unthrottled" in sc:
        lines += [f"{h} Unthrottled", "", *_unthrottled(sc["unthrottled"])]
    if "memory" in sc:
        lines += [f"{h} Memory at full speed", "", *_memory(sc["memory"], sc.get("realistic"))]
    if "hostile" in sc:
        lines += [f"{h} Hostile", "", *_hostile(sc["hostile"])]
    met = {True: "met", False: "**missed**", None: "n/a"}
    lines += [
        f"{h} Targets",
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
        lines += ["", f"{h} Notes", ""] + [f"- {n}" for n in out["notes"]]
    return lines


def server(o: dict[str, Any]) -> str:
    """A sandbox's settings (:func:`benchmarks.runner.settings`) in words."""
    rps = f"{o['rps']:g} requests/s per key" if o["rps"] else "no rate limit"
    return (
        f"{rps}, {o['latency'] * 1000:.0f} ms latency, processing "
        f"{o['processing'][0]:g}-{o['processing'][1]:g} s, "
        f"{_pct(o['download_failure_rate'])} download failures"
    )


def ceiling_text(real: dict[str, Any], items: str = "rows") -> list[str]:
    """How a ceiling is built, from its results (``ceiling_*``, ``data``)."""
    rps = real["ceiling_rps"]
    burst = real["ceiling_burst_requests"]
    best = real["ceiling_rows_per_s_with_burst"]
    rows, requests = real["ceiling_rows"], real["ceiling_requests"]
    return [
        f"The ceiling counts {rows:,} {items}, those that can land (on images that download "
        f"fine, known from the data and the sandbox's deterministic failures, not from what "
        f"landed), not the file's {real['data']['rows']:,}. {requests:,} requests are the "
        f"fewest for this protocol: 2 x ceil({real['ceiling_inputs']:,} images / 128) + "
        f"ceil({rows:,} / 128) = {requests:,} (each image created once and its processing "
        "checked once, one `ListInputs` by ids per 128 inputs - how many ids one "
        "`ListInputs` takes is not documented, so that 128 is itself a guess; each box "
        "annotated once). So at most "
        f"{rps:g} x {rows:,} / {requests:,} = {real['ceiling_rows_per_s']:,} {items}/s.",
        "The sandbox's token bucket starts full: a client gets its first second's "
        f"{burst} requests at once, so "
        + (
            f"the most it can reach is {rps:g} x {rows:,} / ({requests:,} - {burst}) = "
            f"{best:,} {items}/s, {best / real['ceiling_rows_per_s'] * 100:.1f} % of the "
            "ceiling"
            if best is not None
            else "a client can send every request the data needs in that burst"
        )
        + "; a fraction above 100 % is that burst, not a client beating the budget.",
    ]


def _realistic(real: dict[str, Any]) -> list[str]:
    o = real["options"]
    return [
        f"Server: {server(o)}. Data: {real['data']['rows']:,} rows (boxes) on "
        f"{real['data']['images']:,} images; {real['good_rows']:,} rows on images that "
        f"download fine. Ceiling: {real['ceiling_rows_per_s']:,} rows/s. Every client gets "
        f"the same file; ingest runs with `--rps {real['ingest_rps']:g}`.",
        "",
        *ceiling_text(real),
        "",
        *table(
            "client | rows/s | fraction of ceiling | requests | throttled replies | "
            "rows landed | rows lost | rows duplicated | time (s) | CPU (s) | peak RSS (MB)",
            "l" + "r" * 10,
            (
                [
                    client_name(r),
                    f"{r['rows_per_s']:,.1f}",
                    f"{r['ceiling_fraction'] * 100:.1f} %",
                    f"{r['requests']:,}",
                    f"{r['throttled']:,}",
                    f"{r['rows_landed']:,}",
                    fmt_lost(r),
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
        f"row, that is the ceiling's requests / ({o['rps']:g} x elapsed)). The SDK peer "
        "sends each URL's bytes as the image (the SDK cannot send URLs for detection "
        f"data), so the sandbox draws its {_pct(o['download_failure_rate'])} download "
        "failures from other images; its rows lost are judged against its own set.",
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
        "![rows landed over time](results/realistic.png)",
        "",
    ]


def _unthrottled(unt: dict[str, Any]) -> list[str]:
    f = unt["floor"]
    o = unt["options"]
    return [
        f"Server: no rate limit, no latency, processing {o['processing'][0]:g}-"
        f"{o['processing'][1]:g} s. Data: {unt['data']['rows']:,} rows on "
        f"{unt['data']['images']:,} images. ingest runs with `--rps {unt['ingest_rps']:g}` "
        "(far above what it reaches: its limiter never holds it back). Floor (parse the "
        "CSV and build and serialise the protos, `python -m benchmarks.floor`, on the "
        "grouped file: one input per image, what the data needs at least): "
        f"{f['cpu_s']:.2f} CPU s for the whole process ({f['cpu_s_parse_only']:.2f} s of "
        f"it parsing), {f['cpu_s_per_100k_rows']:.2f} s per 100k rows. CPU is each "
        "process's own user+system time from `wait4`, interpreter start-up and imports "
        f"included on both sides. The floor and each ingest client ran {unt['repeats']} "
        "times, in turn (the floor, then each ingest client, then the floor again...): the "
        "floor's CPU s, its parsing share and its CPU s per 100k rows are medians of its "
        "runs; an ingest client's CPU s per 100k rows is the median of its runs' values, "
        "and its other figures (rows/s, time, CPU s, peak RSS) are those of its run of "
        "median CPU s; x floor is not a ratio of those medians but the median of the paired "
        "ratios: each run's CPU s per 100k rows over the floor's run made just before it. "
        "A peer stopped at the cap runs once: its x floor is its CPU s per 100k rows over "
        "the floor's median.",
        "",
        *table(
            "client | rows/s | rows landed | time (s) | CPU (s) | CPU s per 100k rows | "
            "x floor | rows lost | rows duplicated | peak RSS (MB)",
            "l" + "r" * 9,
            (
                [
                    client_name(r),
                    f"{r['rows_per_s']:,.0f}",
                    f"{r['rows_landed']:,}",
                    f"{r['elapsed_s']:.1f}",
                    f"{r['cpu_s']:.1f}",
                    f"{r['cpu_s_per_100k_rows']:.2f}",
                    f"{r['cpu_vs_floor']:.2f}",
                    fmt_lost(r),
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


def _memory(mem: dict[str, Any], real: dict[str, Any] | None) -> list[str]:
    o = mem["options"]
    lines = [
        "Peak RSS (the client process's `ru_maxrss`) at full speed: a sandbox with "
        f"{'no rate limit' if not o['rps'] else str(o['rps']) + ' requests/s'}, no latency, "
        f"processing {o['processing'][0]:g}-{o['processing'][1]:g} s, keeping ids only; "
        f"ingest told `--rps {mem['ingest_rps']:g}`. Losses and duplicates are judged by "
        "each image's count of annotations against its boxes in the file."
        + ("" if mem["big"] else " The big file (`--big`) was not run."),
        "",
        *table(
            "client | rows | order | peak RSS (MB) | time (s) | rows/s | CPU (s) | "
            "rows lost | rows duplicated",
            "lrlrrrrrr",
            (
                [
                    client_name(r),
                    f"{r['rows']:,}",
                    r["order"],
                    f"{r['peak_rss_mb']:.1f}",
                    f"{r['elapsed_s']:.1f}",
                    f"{r['rows_per_s']:,.0f}",
                    f"{r['cpu_s']:.1f}",
                    fmt_lost(r),
                    f"{r['rows_duplicated']:,}",
                ]
                for r in mem["results"]
            ),
        ),
        "",
        "![peak RSS against rows](results/memory.png)",
        "",
    ]
    stages = {r["client"].removeprefix("baseline: "): r for r in mem.get("baseline", [])}
    if {"interpreter", "grpc", "imports", "channel"} <= set(stages):
        rss = {k: v["peak_rss_mb"] for k, v in stages.items()}
        lines += [
            "What holds the rest (`python -m benchmarks.baseline`, each a process of its "
            f"own): Python started alone {rss['interpreter']:.1f} MB; with gRPC, protobuf "
            f"and clarifai-grpc's messages imported {rss['grpc']:.1f} MB; with the whole "
            f"command line imported {rss['imports']:.1f} MB; and a gRPC channel opened to the "
            f"sandbox and ready {rss['channel']:.1f} MB."
        ]
        cli = [r for r in mem["results"] if r["client"] == "ingest (CLI, shuffled)"]
        if cli:
            big = max(cli, key=lambda r: r["rows"])
            lines[-1] += (
                f" Of the command line's {big['peak_rss_mb']:.1f} MB at {big['rows']:,} rows, "
                f"the interpreter holds {rss['interpreter']:.1f}, gRPC and protobuf "
                f"{rss['grpc'] - rss['interpreter']:.1f}, ingest's other imports "
                f"{rss['imports'] - rss['grpc']:.1f}, the channel "
                f"{rss['channel'] - rss['imports']:.1f}; the upload itself "
                f"{big['peak_rss_mb'] - rss['channel']:.1f} MB."
            )
        lines.append("")
    if real is not None:
        at = [r for r in real["results"] if r["client"] == "ingest (CLI, shuffled)"]
        if at:
            r = at[0]
            lines += [
                f"At {real['ingest_rps']:g} requests/s (the realistic scenario's run of the "
                f"command line on its shuffled file, {real['data']['rows']:,} rows): peak "
                f"RSS {r['peak_rss_mb']:.1f} MB.",
                "",
            ]
    return lines


def _hostile(hos: dict[str, Any]) -> list[str]:
    o = hos["options"]
    return [
        f"Server: {o['rps']:g} requests/s (ingest is told `--rps {hos['ingest_rps']:g}`), "
        f"{_pct(o['unavailable_rate'])} UNAVAILABLE, {_pct(o['lost_reply_rate'])} lost "
        "replies (the write happens, the reply does not arrive), "
        f"{_pct(o['download_failure_rate'])} download failures, "
        f"{_pct(o['stuck_rate'])} inputs that never finish processing, "
        f"{_pct(o['spike_rate'])} latency spikes of {o['spike_seconds']:g} s, latency "
        f"{o['latency'] * 1000:.0f} +/- {o['latency_jitter'] * 1000:.0f} ms. Data: "
        f"{hos['data']['rows']:,} rows on {hos['data']['images']:,} images.",
        "",
        *table(
            "client | rows landed | rows expected | rows lost | rows duplicated | "
            "inputs duplicated | annotations duplicated | requests | throttled | time (s)",
            "l" + "r" * 9,
            (
                [
                    client_name(r),
                    f"{r['rows_landed']:,}",
                    f"{r['rows_expected']:,}",
                    fmt_lost(r),
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
            ax.plot(xs, ys, label=client_name(r))
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
        for client in dict.fromkeys(r["client"] for r in mem["results"]):
            runs = sorted((r for r in mem["results"] if r["client"] == client), key=_rows)
            ys = [r["peak_rss_mb"] for r in runs]
            top = max(top, *ys)
            ax.plot([r["rows"] for r in runs], ys, marker="o", label=client)
        ax.axhline(RSS_MB, color="red", lw=0.8, ls="--", label=f"target {RSS_MB:g} MB")
        ax.set_xscale("log")
        ax.set_ylim(0, max(RSS_MB + 10, top * 1.1))
        ax.set_xlabel("rows in the CSV")
        ax.set_ylabel("client peak RSS (MB)")
        ax.set_title(f"Memory at full speed (--rps {mem['ingest_rps']:g})")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(directory / "memory.png")
        plt.close(fig)


def _rows(r: dict[str, Any]) -> int:
    return int(r["rows"])


def write_results(out: dict[str, Any], directory: Path) -> None:
    write_json(directory, "results", out)
    (directory / "results.md").write_text(markdown(out).replace("](results/", "]("))
    plots(out, directory)


def load(directory: Path, name: str) -> Any:
    """``directory/NAME.json``, or None when there is none."""
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
