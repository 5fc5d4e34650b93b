"""One ingest run through the public API, for the benchmarks: prints a JSON line.

::

    python -m benchmarks.run_ingest DATA.csv --base http://127.0.0.1:PORT [--rps R] [--timeline]
        [--processing-timeout S] [--call-timeout S]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import anyio

from ingest import Config, Ingester


async def _main(ns: argparse.Namespace) -> dict[str, object]:
    config = Config(
        pat="sandbox-pat",
        user_id="sandbox",
        app_id="sandbox-app",
        base=ns.base,
        rps=ns.rps,
        concurrency=ns.concurrency,
        processing_timeout=ns.processing_timeout,
        call_timeout=ns.call_timeout,
    )
    timeline: list[tuple[float, int, int]] = []
    started = time.monotonic()
    async with Ingester(config) as ing, anyio.create_task_group() as tg:

        async def sample() -> None:
            while True:
                r = ing.report
                timeline.append(
                    (
                        round(time.monotonic() - started, 2),
                        r.rows_done,
                        ing.client.stats.requests,
                    )
                )
                await anyio.sleep(0.5)

        if ns.timeline:
            tg.start_soon(sample)
        report = await ing.run(ns.csv)
        tg.cancel_scope.cancel()
    out: dict[str, object] = report.to_dict()
    out["rate_at_end"] = ing.client.limiter.rate
    if ns.timeline:
        timeline.append((round(report.elapsed_s, 2), report.rows_done, report.requests))
        out["timeline"] = timeline
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_ingest")
    parser.add_argument("csv")
    parser.add_argument("--base", required=True)
    parser.add_argument("--rps", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--processing-timeout", type=float, default=600.0)
    parser.add_argument("--call-timeout", type=float, default=60.0)
    parser.add_argument("--timeline", action="store_true")
    parser.add_argument("--uvloop", action="store_true")
    ns = parser.parse_args(argv)
    result = anyio.run(_main, ns, backend="asyncio", backend_options={"use_uvloop": ns.uvloop})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
