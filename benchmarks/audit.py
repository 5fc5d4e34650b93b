"""What the server holds after a client, and what its request budget allows.

:func:`analyse` reads the sandbox's own state (never the client's word): requests and
throttled replies, rows landed, duplicated and lost, against what the data holds
(:class:`benchmarks.data.Data`, read from the file apart from ingest). :func:`ceiling` is
the request-budget ceiling of data whose rows that can land are known beforehand.

The ceiling is the fewest requests *for this protocol* (:mod:`ingest.estimate`, the
arithmetic ``ingest plan`` estimates an upload with): each input created once (128 per
``PostInputs``), its processing checked once (one ``ListInputs`` by ids per 128 inputs;
how many ids one ``ListInputs`` takes is not documented, so 128 is itself a guess, listed
in docs/clarifai-facts.md), each box annotated once (128 per ``PostAnnotations``). A
protocol that checks processing otherwise (waiting on an inputs-add job, say) has another
fewest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.data import BoxKey, Data, box_key, download_fails, image_number
from ingest.estimate import PER_CALL, upload_requests
from ingest.sandbox import Sandbox

__all__ = ["PER_CALL", "Ceiling", "ImageOf", "analyse", "ceiling", "ceiling_requests"]

ImageOf = Callable[[Any], str]
"""The image a stored input holds (the key of :attr:`Data.boxes`), from its message."""


def _url_or_bytes(message: Any) -> str:
    image = message.data.image
    return str(image.url or image.base64.decode("utf-8", "replace"))


def ceiling_requests(inputs: int, boxes: int, per_call: int = PER_CALL) -> int:
    """The fewest requests for this protocol: create and check each input, annotate each box
    (the arithmetic ``ingest plan`` estimates with: :func:`ingest.estimate.upload_requests`)."""
    return upload_requests(inputs, boxes, per_call)


@dataclass(frozen=True)
class Ceiling:
    """The most rows/s a request budget allows for some data (README.md, "How it measures")."""

    inputs: int
    """Images in the file: every one is created and checked, whether it downloads or not."""
    rows: int
    """Rows the ceiling counts: boxes on images that download fine (the rows that can land),
    computed from the data and the sandbox's deterministic download failures."""
    rps: float
    requests: int
    """The fewest requests for this protocol: 2 x ceil(inputs / 128) + ceil(rows / 128)."""
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

    def to_dict(self) -> dict[str, Any]:
        """The figures a results file keeps (``ceiling_*``)."""
        best = self.rows_per_s_with_burst
        return {
            "ceiling_inputs": self.inputs,
            "ceiling_rows": self.rows,
            "ceiling_rps": self.rps,
            "ceiling_requests": self.requests,
            "ceiling_rows_per_s": round(self.rows_per_s, 1),
            "ceiling_burst_requests": self.burst,
            "ceiling_rows_per_s_with_burst": round(best, 1) if math.isfinite(best) else None,
        }


def ceiling(inputs: int, rows: int, rps: float) -> Ceiling:
    """The ceiling for ``inputs`` images carrying ``rows`` rows that can land, at ``rps``."""
    requests = ceiling_requests(inputs, rows)
    burst = max(1, int(rps))
    rows_per_s = rps * rows / requests if requests else 0.0
    spare = requests - burst
    with_burst = rps * rows / spare if spare > 0 else math.inf
    return Ceiling(inputs, rows, rps, requests, rows_per_s, burst, with_burst)


def analyse(
    sb: Sandbox,
    data: Data,
    mode: str,
    *,
    finished: bool,
    image_of: ImageOf = _url_or_bytes,
) -> dict[str, Any]:
    """What the server holds after a client: landed, duplicated and lost rows.

    ``finished``: the client ran to its end (else rows lost cannot be judged: None)."""
    stats = sb.stats
    out: dict[str, Any] = {
        "requests": sum(stats.requests.values()),
        "requests_by_method": dict(sorted(stats.requests.items())),
        "throttled": stats.throttled,
        "inputs_stored": len(sb.servicer.state.inputs),
        "annotations_stored": len(sb.servicer.state.annotations),
    }
    if data.per_image is not None:
        out.update(_by_count(sb, data, finished))
    else:
        out.update(_by_box(sb, data, mode, finished, image_of))
    return out


def _by_box(
    sb: Sandbox, data: Data, mode: str, finished: bool, image_of: ImageOf
) -> dict[str, Any]:
    """Every stored box against the file's boxes of its image (a sandbox keeping messages)."""
    state = sb.servicer.state
    opts = sb.options
    if not opts.store:
        raise ValueError("a sandbox keeping ids only has no boxes: index the data by counts")
    image_of_input: dict[str, str] = {}
    fates: dict[str, list[str]] = {}
    for input_id, stored in state.inputs.items():
        image = image_of(stored.message)
        image_of_input[input_id] = image
        fates.setdefault(image, []).append(stored.fate)
    landed: set[tuple[str, BoxKey | None]] = set()
    on_inputs = 0
    for ann in state.annotations.values():
        of = image_of_input.get(ann.input_id)
        if of is None:
            continue
        on_inputs += 1
        if ann.data.regions:
            bb = ann.data.regions[0].region_info.bounding_box
            landed.add((of, box_key([bb.left_col, bb.top_row, bb.right_col, bb.bottom_row])))
        else:
            landed.add((of, None))
    by_image: Counter[str] = Counter(
        image for image, key in landed if key is not None and key in data.boxes.get(image, ())
    )
    expected = lost = excused_stuck = excused_failed = 0
    for image, boxes in data.boxes.items():
        if download_fails(opts, image, mode):
            excused_failed += len(boxes)
            continue
        seen = fates.get(image)
        if seen and all(f == "stuck" for f in seen):
            excused_stuck += len(boxes)
            continue
        expected += len(boxes)
        lost += len(boxes) - by_image[image]
    inputs_duplicated = len(state.inputs) - len(fates)
    annotations_duplicated = on_inputs - len(landed)
    return {
        "rows_landed": sum(by_image.values()),
        "rows_expected": expected,
        "rows_on_failed_downloads": excused_failed,
        "rows_on_stuck_inputs": excused_stuck,
        "rows_lost": lost if finished else None,
        "inputs_duplicated": inputs_duplicated,
        "annotations_duplicated": annotations_duplicated,
        "rows_duplicated": inputs_duplicated + annotations_duplicated,
    }


def _by_count(sb: Sandbox, data: Data, finished: bool) -> dict[str, Any]:
    """How many annotations each image's input holds against how many boxes the file gives
    it (a sandbox keeping ids only, no download failures): more is a duplicate, fewer a
    loss. A stored input of an image the file does not have counts as duplicated."""
    assert data.per_image is not None
    state = sb.servicer.state
    expected_of = data.per_image
    got = [0] * len(expected_of)
    seen = bytearray(len(expected_of))
    inputs_duplicated = annotations_duplicated = 0
    for input_id, stored in state.inputs.items():
        n = image_number(stored.message.data.image.url)
        anns = len(state.by_input.get(input_id, ()))
        if n >= len(expected_of) or seen[n]:
            inputs_duplicated += 1
            annotations_duplicated += anns
            continue
        seen[n] = 1
        got[n] = anns
    landed = lost = 0
    for want, have in zip(expected_of, got, strict=True):
        landed += min(want, have)
        lost += max(0, want - have)
        annotations_duplicated += max(0, have - want)
    return {
        "rows_landed": landed,
        "rows_expected": sum(expected_of),
        "rows_on_failed_downloads": 0,
        "rows_on_stuck_inputs": 0,
        "rows_lost": lost if finished else None,
        "inputs_duplicated": inputs_duplicated,
        "annotations_duplicated": annotations_duplicated,
        "rows_duplicated": inputs_duplicated + annotations_duplicated,
    }
