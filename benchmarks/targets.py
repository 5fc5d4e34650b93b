"""The targets of the suite, judged on its results: value, goal, met or missed, margin."""

from __future__ import annotations

from typing import Any

__all__ = ["targets", "unplanned_deaths"]


def _find(scenario: dict[str, Any] | None, client: str) -> dict[str, Any] | None:
    for r in (scenario or {}).get("results", []):
        if r["client"] == client:
            return dict(r)
    return None


def unplanned_deaths(out: dict[str, Any]) -> list[str]:
    """Every client run, in every scenario, that died from a signal nobody sent it."""
    deaths = []
    for name, scenario in out["scenarios"].items():
        runs = list(scenario.get("results", []))
        runs += [
            {"client": f"{client}, cycle collector timed", **r}
            for client, r in (scenario.get("collector") or {}).items()
            if isinstance(r, dict)
        ]
        deaths += [
            f"{name}: {r['client']} died from {r['unplanned_death']}"
            for r in runs
            if r.get("unplanned_death")
        ]
    return deaths


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 6 for ingest (API client): value, goal, met or missed."""
    sc = out["scenarios"]
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, met: bool | None, margin: str) -> None:
        rows.append({"target": name, "value": value, "goal": goal, "met": met, "margin": margin})

    def at_most(name: str, ratio: float, goal: float) -> None:
        """A ratio whose goal is ``<= goal``x: the headroom, or how many times the goal."""
        margin = (
            f"{(goal - ratio) / goal * 100:.0f} % headroom"
            if ratio <= goal
            else f"{ratio / goal:.2f} times the goal"
        )
        add(name, ratio, f"<= {goal:g}x", ratio <= goal, margin)

    real = sc.get("realistic")
    ing = _find(real, "ingest (API)")
    if ing:
        frac = ing["ceiling_fraction"]
        lost = ing.get("rows_lost")
        add(
            "realistic: fraction of the request-budget ceiling",
            frac,
            ">= 0.90",
            frac >= 0.90,
            f"{(frac - 0.90) * 100:+.1f} points",
        )
        add("realistic: rows lost", lost, "0", lost == 0, f"{lost} rows")
        mixed = _find(real, "ingest (API, shuffled)")
        if mixed:
            frac = mixed["ceiling_fraction"]
            add(
                "realistic, rows shuffled: fraction of the request-budget ceiling",
                frac,
                ">= 0.90",
                frac >= 0.90,
                f"{(frac - 0.90) * 100:+.1f} points",
            )
            more = mixed["requests"] / ing["requests"] - 1
            add(
                "realistic, rows shuffled: requests against the grouped file's",
                round(more, 3),
                "within 5 %",
                abs(more) <= 0.05,
                f"{mixed['requests']} against {ing['requests']}",
            )
            share = mixed["throttled"] / (mixed["requests"] or 1)
            add(
                "realistic, rows shuffled: throttled replies",
                round(share, 4),
                "<= 1 %",
                share <= 0.01,
                f"{mixed['throttled']} of {mixed['requests']}",
            )
        for peer, factor in (("seed algorithm", 5.0), ("clarifai SDK", 2.0)):
            p = _find(real, peer)
            if p and p["rows_per_s"]:
                ratio = ing["rows_per_s"] / p["rows_per_s"]
                add(
                    f"realistic: rows/s against the {peer}",
                    round(ratio, 2),
                    f">= {factor:g}x",
                    ratio >= factor,
                    f"{ratio / factor * 100 - 100:+.0f} %",
                )
    unt = sc.get("unthrottled")
    ing = _find(unt, "ingest (API)")
    if ing:
        at_most("unthrottled: client CPU against the floor", ing["cpu_vs_floor"], 1.5)
    mixed = _find(unt, "ingest (API, shuffled)")
    if mixed and "cpu_vs_grouped" in mixed:
        at_most(
            "unthrottled: client CPU for the shuffled file against the grouped one",
            mixed["cpu_vs_grouped"],
            1.5,
        )
    for order in ("grouped", "shuffled"):
        mem = [
            r
            for r in (sc.get("memory") or {}).get("results", [])
            if r.get("order", "grouped") == order
        ]
        if len(mem) < 2:
            continue
        small, big = mem[0], mem[-1]
        add(
            f"memory: peak RSS at {big['rows']:,} rows, {order} (MB)",
            big["peak_rss_mb"],
            "<= 150",
            big["peak_rss_mb"] <= 150,
            f"{150 - big['peak_rss_mb']:+.1f} MB headroom",
        )
        growth = big["peak_rss_mb"] / small["peak_rss_mb"] - 1
        add(
            f"memory: {big['rows']:,} rows against {small['rows']:,}, {order}",
            round(growth, 3),
            "within +10 %",
            abs(growth) <= 0.10,
            f"{growth * 100:+.1f} %",
        )
    hos = sc.get("hostile")
    ours = [r for r in (hos or {}).get("results", []) if r["client"].startswith("ingest")]
    if ours:
        ok = all(r.get("rows_lost") == 0 and r.get("rows_duplicated") == 0 for r in ours)
        add(
            "hostile: nothing lost, nothing duplicated (every ingest client, killed CLI included)",
            None,
            "0 and 0",
            ok,
            "; ".join(
                f"{r['client']}: lost {r.get('rows_lost')}, duplicated {r.get('rows_duplicated')}"
                for r in ours
            ),
        )
    deaths = unplanned_deaths(out)
    add(
        "every run: no client died from a signal nobody sent (every client, every scenario)",
        len(deaths),
        "0",
        not deaths,
        "; ".join(deaths) or "none",
    )
    return rows
