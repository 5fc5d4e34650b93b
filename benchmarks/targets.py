"""The targets of the suite, judged on its results: value, goal, met or missed, margin.

A target judged on a client's run is met only when that run counts (it finished, exited
as expected, lost and duplicated nothing: :func:`benchmarks.verdict.problems`); when it
does not, the target is not met and its margin says why ("not met: lost 3 rows"), since
a fast run that lost rows proves nothing. A target whose run was not made (the 5M-row
file without ``--big``, a scenario left out) is n/a and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["RSS_AT_BUDGET_MB", "RSS_MB", "targets"]

RSS_MB = 150.0
"""Most peak RSS of a client at full speed, whatever the file's size and row order."""
RSS_GROWTH = 0.10
"""Most growth of that peak from the memory file (~100k rows) to the big one (~5M)."""
RSS_AT_BUDGET_MB = 120.0
"""Most peak RSS of the command line at 15 requests/s."""
CPU_VS_FLOOR = 1.5
"""Most client CPU per 100k rows, as a multiple of the floor's."""


def _find(scenario: dict[str, Any] | None, client: str, **match: Any) -> dict[str, Any] | None:
    for r in (scenario or {}).get("results", []):
        if r["client"] == client and all(r.get(k) == v for k, v in match.items()):
            return dict(r)
    return None


class _Targets:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        value: float | None,
        goal: str,
        met: bool | None,
        margin: str,
        runs: tuple[dict[str, Any] | None, ...] = (),
    ) -> None:
        """One target; not met, whatever its value, when one of ``runs`` does not count."""
        spoilt = [p for r in runs if r for p in r.get("problems", ())]
        if spoilt:
            met, margin = False, "not met: " + "; ".join(spoilt)
        self.rows.append(
            {"target": name, "value": value, "goal": goal, "met": met, "margin": margin}
        )

    def missing(self, name: str, goal: str, why: str) -> None:
        self.rows.append({"target": name, "value": None, "goal": goal, "met": None, "margin": why})

    def at_most(
        self, name: str, r: dict[str, Any] | None, key: str, goal: float, unit: str = "x"
    ) -> None:
        """``r[key]`` at most ``goal``: the headroom, or how far above."""
        if r is None or r.get(key) is None:
            self.missing(name, f"<= {goal:g}{unit}", "not measured in this run")
            return
        value = float(r[key])
        if unit == "x":
            margin = (
                f"{(goal - value) / goal * 100:.0f} % headroom"
                if value <= goal
                else f"{value / goal:.2f} times the goal"
            )
        else:
            margin = f"{goal - value:+.1f} {unit.strip()} headroom"
        self.add(name, value, f"<= {goal:g}{unit}", value <= goal, margin, (r,))


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: value, goal, met (True, False, or None when not measured), margin."""
    sc = out["scenarios"]
    t = _Targets()
    _realistic(t, sc.get("realistic"))
    _unthrottled(t, sc.get("unthrottled"))
    _memory(t, sc.get("memory"), sc.get("realistic"))
    hos = sc.get("hostile")
    ours = [r for r in (hos or {}).get("results", []) if r.get("judged")]
    if ours:
        t.add(
            "hostile: nothing lost, nothing duplicated (every ingest client, killed CLI included)",
            None,
            "0 and 0",
            all(r.get("rows_lost") == 0 and r.get("rows_duplicated") == 0 for r in ours),
            "; ".join(
                f"{r['client']}: lost {r.get('rows_lost')}, duplicated {r.get('rows_duplicated')}"
                for r in ours
            ),
            tuple(ours),
        )
    failed = out.get("failures", [])
    t.add(
        "every run counts: each ingest client finished, exited as expected, lost and "
        "duplicated nothing; no client died from a signal nobody sent (every scenario)",
        len(failed),
        "0",
        not failed,
        "; ".join(failed) or "none",
    )
    return t.rows


def _realistic(t: _Targets, real: dict[str, Any] | None) -> None:
    ing = _find(real, "ingest (API)")
    if not ing:
        return

    def fraction(name: str, r: dict[str, Any]) -> None:
        frac = r["ceiling_fraction"]
        margin = f"{(frac - 0.90) * 100:+.1f} points"
        t.add(name, frac, ">= 0.90", frac >= 0.90, margin, (r,))

    fraction("realistic: fraction of the request-budget ceiling (API)", ing)
    cli = _find(real, "ingest (CLI)")
    if cli:
        fraction("realistic: fraction of the request-budget ceiling (CLI)", cli)
    mixed = _find(real, "ingest (API, shuffled)")
    if mixed:
        fraction("realistic, rows shuffled: fraction of the request-budget ceiling (API)", mixed)
        more = mixed["requests"] / ing["requests"] - 1
        t.add(
            "realistic, rows shuffled: requests against the grouped file's (API)",
            round(more, 3),
            "within 5 %",
            abs(more) <= 0.05,
            f"{mixed['requests']} against {ing['requests']}",
            (mixed, ing),
        )
        share = mixed["throttled"] / (mixed["requests"] or 1)
        t.add(
            "realistic, rows shuffled: throttled replies (API)",
            round(share, 4),
            "<= 1 %",
            share <= 0.01,
            f"{mixed['throttled']} of {mixed['requests']}",
            (mixed,),
        )
    for peer, factor in (("seed algorithm", 5.0), ("clarifai SDK", 2.0)):
        p = _find(real, peer)
        if p and p["rows_per_s"]:
            ratio = ing["rows_per_s"] / p["rows_per_s"]
            t.add(
                f"realistic: rows/s against the {peer} (API)",
                round(ratio, 2),
                f">= {factor:g}x",
                ratio >= factor,
                f"{ratio / factor * 100 - 100:+.0f} %",
                (ing, p),
            )


def _unthrottled(t: _Targets, unt: dict[str, Any] | None) -> None:
    if not unt:
        return
    t.at_most(
        "unthrottled: client CPU per 100k rows against the floor (API)",
        _find(unt, "ingest (API)"),
        "cpu_vs_floor",
        CPU_VS_FLOOR,
    )
    t.at_most(
        "unthrottled: client CPU per 100k rows against the floor (CLI, rows shuffled)",
        _find(unt, "ingest (CLI, shuffled)"),
        "cpu_vs_floor",
        CPU_VS_FLOOR,
    )
    t.at_most(
        "unthrottled: client CPU for the shuffled file against the grouped one (API)",
        _find(unt, "ingest (API, shuffled)"),
        "cpu_vs_grouped",
        1.5,
    )


def _memory(t: _Targets, mem: dict[str, Any] | None, real: dict[str, Any] | None) -> None:
    if mem:
        runs: Callable[[str], list[dict[str, Any]]] = lambda client: sorted(  # noqa: E731
            (r for r in mem["results"] if r["client"] == client), key=lambda r: r["rows"]
        )
        for client in ("ingest (CLI, shuffled)", "ingest (API)", "ingest (API, shuffled)"):
            sized = runs(client)
            for r in sized:
                t.at_most(
                    f"full speed: peak RSS at {r['rows']:,} rows, {client} (MB)",
                    r,
                    "peak_rss_mb",
                    RSS_MB,
                    " MB",
                )
            name = f"full speed: peak RSS, the big file against the small one, {client}"
            if len(sized) < 2:
                t.missing(
                    name, f"within +{RSS_GROWTH * 100:g} %", "the big file was not run (--big)"
                )
                continue
            small, big = sized[0], sized[-1]
            growth = big["peak_rss_mb"] / small["peak_rss_mb"] - 1
            t.add(
                f"{name} ({big['rows']:,} against {small['rows']:,} rows)",
                round(growth, 3),
                f"within +{RSS_GROWTH * 100:g} %",
                abs(growth) <= RSS_GROWTH,
                f"{growth * 100:+.1f} %",
                (small, big),
            )
    if real is not None:
        t.at_most(
            f"{real['ingest_rps']:g} requests/s: peak RSS, ingest (CLI, shuffled) (MB)",
            _find(real, "ingest (CLI, shuffled)"),
            "peak_rss_mb",
            RSS_AT_BUDGET_MB,
            " MB",
        )
