"""What the server holds after a client, and what its request budget allows.

:func:`analyse` reads the sandbox's own state (never the client's word): requests and
throttled replies, rows landed, duplicated and lost. :func:`ceiling` is the request-budget
ceiling of the realistic scenario.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.data import BoxKey, Data, box_key, download_fails
from benchmarks.harness import ceiling_requests
from ingest.sandbox import Sandbox

__all__ = ["Ceiling", "analyse", "ceiling"]


@dataclass(frozen=True)
class Ceiling:
    """The most rows/s a request budget allows for some data (README.md, "How it measures")."""

    inputs: int
    """Images in the file: every one is created and checked, whether it downloads or not."""
    rows: int
    """Rows the ceiling counts: boxes on images that download fine (the rows that can land)."""
    rps: float
    requests: int
    """The fewest requests the data needs: 2 x ceil(inputs / 128) + ceil(rows / 128)."""
    rows_per_s: float
    """rps x rows / requests."""
    burst: int
    """Requests a full token bucket grants at once (one second of budget, at least one)."""
    rows_per_s_with_burst: float
    """rps x rows / (requests - burst): the most rows/s with the bucket full at the start
    (infinite when the burst alone covers every request)."""

    def fraction(self, rows_per_s: float) -> float:
        """``rows_per_s`` over the ceiling, rounded to 3 decimals."""
        return round(rows_per_s / self.rows_per_s, 3) if self.rows_per_s else 0.0


def ceiling(inputs: int, rows: int, rps: float) -> Ceiling:
    """The ceiling for ``inputs`` images carrying ``rows`` rows that can land, at ``rps``."""
    requests = ceiling_requests(inputs, rows)
    burst = max(1, int(rps))
    rows_per_s = rps * rows / requests if requests else 0.0
    spare = requests - burst
    with_burst = rps * rows / spare if spare > 0 else math.inf
    return Ceiling(inputs, rows, rps, requests, rows_per_s, burst, with_burst)


def analyse(sb: Sandbox, data: Data, mode: str, *, finished: bool) -> dict[str, Any]:
    """What the server holds after a client: landed, duplicated and lost rows."""
    state = sb.servicer.state
    opts = sb.options
    stats = sb.stats
    out: dict[str, Any] = {
        "requests": sum(stats.requests.values()),
        "requests_by_method": dict(sorted(stats.requests.items())),
        "throttled": stats.throttled,
        "inputs_stored": len(state.inputs),
        "annotations_stored": len(state.annotations),
    }
    if not opts.store:  # ids only: count, no boxes to compare
        out["rows_landed"] = len(state.annotations)
        return out
    url_of: dict[str, str] = {}
    fates: dict[str, list[str]] = {}
    for input_id, stored in state.inputs.items():
        image = stored.message.data.image
        url = image.url or image.base64.decode("utf-8", "replace")
        url_of[input_id] = url
        fates.setdefault(url, []).append(stored.fate)
    landed: set[tuple[str, BoxKey | None]] = set()
    on_inputs = 0
    for ann in state.annotations.values():
        url = url_of.get(ann.input_id)
        if url is None:
            continue
        on_inputs += 1
        if ann.data.regions:
            bb = ann.data.regions[0].region_info.bounding_box
            landed.add((url, box_key([bb.left_col, bb.top_row, bb.right_col, bb.bottom_row])))
        else:
            landed.add((url, None))
    by_url: Counter[str] = Counter(
        url for url, key in landed if key is not None and key in data.boxes.get(url, ())
    )
    expected = lost = excused_stuck = excused_failed = 0
    for url, boxes in data.boxes.items():
        if download_fails(opts, url, mode):
            excused_failed += len(boxes)
            continue
        seen = fates.get(url)
        if seen and all(f == "stuck" for f in seen):
            excused_stuck += len(boxes)
            continue
        expected += len(boxes)
        lost += len(boxes) - by_url[url]
    out.update(
        rows_landed=sum(by_url.values()),
        rows_expected=expected,
        rows_on_failed_downloads=excused_failed,
        rows_on_stuck_inputs=excused_stuck,
        rows_lost=lost if finished else None,
        inputs_duplicated=len(state.inputs) - len(fates),
        annotations_duplicated=on_inputs - len(landed),
        rows_duplicated=(len(state.inputs) - len(fates)) + (on_inputs - len(landed)),
    )
    return out
