"""How many requests an upload (or a verification) of some data takes, and how long.

One piece of arithmetic, shared by ``ingest plan`` (:func:`estimate_upload`) and the
benchmarks' request-budget ceilings (:func:`upload_requests`): the fewest requests *for
this protocol*. Each image is created once (up to 128 per ``PostInputs``) and its
processing checked once (one ``ListInputs`` by ids per 128 inputs), each region is
annotated once (up to 128 per ``PostAnnotations``); each dataset the data names costs one
``PostDatasets``, each dataset version one ``PostDatasetVersions``. That one
``ListInputs`` takes 128 ids is a guess (docs/clarifai-facts.md, "Limits").

Time: the requests at the budget (the client spaces them evenly, and keeps every stage
busy, so the budget is what bounds a large upload), and the end of the run that the
budget cannot fill: the last inputs' processing (the service's, before their boxes can
go) beyond what the annotation calls held back for it fill, their check, their last
annotation calls.

A verification (``ingest verify``) reads instead: one ``ListInputs`` per 128 images and
the pages of ``ListAnnotations`` of those inputs (up to 1,000 annotations a page, the
documented most: docs/clarifai-facts.md, "Limits").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "ANNOTATION_PAGE",
    "BACKLOG_CALLS",
    "PER_CALL",
    "Estimate",
    "estimate_upload",
    "upload_requests",
    "verify_requests",
]

PER_CALL = 128
"""Items per call: Clarifai's most inputs per PostInputs and annotations per
PostAnnotations, and (a guess) ids per ListInputs."""

ANNOTATION_PAGE = 1000
"""Annotations per ListAnnotations page: the most a page may hold (Clarifai's pagination
docs: "You can get up to 1,000 results per page")."""


def _calls(items: int, per_call: int) -> int:
    return math.ceil(items / per_call) if items > 0 else 0


def upload_requests(inputs: int, regions: int, per_call: int = PER_CALL) -> int:
    """The fewest requests to create and check ``inputs`` inputs and annotate ``regions``
    regions, ``per_call`` items a call."""
    return 2 * _calls(inputs, per_call) + _calls(regions, per_call)


def verify_requests(images: int, annotations: int, per_call: int = PER_CALL) -> int:
    """The requests a verification of ``images`` images whose inputs hold ``annotations``
    annotations (input-level ones included) takes when every image is in the app: one
    ``ListInputs`` per ``per_call`` images, and for those inputs the pages of their
    annotations (at least one, a partial page ends the list)."""
    batches = _calls(images, per_call)
    if not batches:
        return 0
    per_batch = annotations / batches
    return batches * (1 + math.floor(per_batch / ANNOTATION_PAGE) + 1)


BACKLOG_CALLS = 32
"""Most annotation calls an upload holds back for the end of its run, to send while the last
inputs are processed (the pipeline's own bound)."""


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """The requests and wall time of an upload at a request budget, and what they assume."""

    post_inputs: int
    list_inputs: int
    post_annotations: int
    post_datasets: int = 0
    post_dataset_versions: int = 0
    rps: float
    """The request budget the time is worked out at (``Config.rps``)."""
    seconds: float
    """The wall time: every request at the budget, and the end of the run that the budget
    cannot fill (:attr:`tail_s`)."""
    assumptions: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return (
            self.post_inputs
            + self.list_inputs
            + self.post_annotations
            + self.post_datasets
            + self.post_dataset_versions
        )

    @property
    def requests_by_method(self) -> dict[str, int]:
        """Each method's requests (those with none left out)."""
        out = {
            "PostInputs": self.post_inputs,
            "ListInputs": self.list_inputs,
            "PostAnnotations": self.post_annotations,
            "PostDatasets": self.post_datasets,
            "PostDatasetVersions": self.post_dataset_versions,
        }
        return {k: v for k, v in out.items() if v}

    @property
    def tail_s(self) -> float:
        """Seconds beyond the requests at the budget: the wait for the last inputs'
        processing that the annotation calls held back for it do not fill."""
        return max(0.0, self.seconds - self.requests / self.rps)


def _seconds(requests: int, annotation_calls: int, rps: float, processing_s: float) -> float:
    """The wall time of ``requests`` at ``rps`` when the last inputs take ``processing_s``.

    The last inputs are checked once processing has usually finished, and again half that
    later for those that had not (the wait); meanwhile the upload sends the annotation
    calls it held back for it (at most :data:`BACKLOG_CALLS`, and no more than the wait
    has room for); after the wait, the last check and the last inputs' annotations.
    """
    if not requests:
        return 0.0
    wait = processing_s + max(0.5, processing_s / 2)
    held = min(annotation_calls, BACKLOG_CALLS, math.ceil(rps * wait))
    after = min(requests, held + 2)
    return max(requests / rps, (requests - after) / rps + wait + 2 / rps)


def estimate_upload(
    inputs: int,
    regions: int,
    *,
    rps: float,
    datasets: int = 0,
    dataset_versions: int = 0,
    batch_size: int = PER_CALL,
    annotation_batch_size: int = PER_CALL,
    check_batch_size: int = PER_CALL,
    processing_s: float = 1.5,
) -> Estimate:
    """The requests and time of uploading ``inputs`` images carrying ``regions`` boxes and
    polygons at ``rps`` requests a second (the options are :class:`~ingest.Config`'s).

    ``processing_s``: about how long the service takes to process an input (the
    upload's first guess, ``Config.processing_estimate``, is 1.5 s).
    """
    post_inputs = _calls(inputs, batch_size)
    list_inputs = _calls(inputs, check_batch_size)
    post_annotations = _calls(regions, annotation_batch_size)
    requests = post_inputs + list_inputs + post_annotations + datasets + dataset_versions
    assumptions = [
        f"{batch_size} inputs per PostInputs, {check_batch_size} ids per ListInputs, "
        f"{annotation_batch_size} regions per PostAnnotations; each input checked once "
        "(one that is not processed yet is checked again: a few more ListInputs)",
        "every image is new to the app, and none fails (an image already there costs the "
        "same calls, and a PatchInputs for each 128 that lack labels or metadata)",
        f"the service answers within the budget of {rps:g} requests/s without throttling",
        f"processing takes about {processing_s:g} s an input, which the other requests "
        "overlap but for the last inputs",
    ]
    return Estimate(
        post_inputs=post_inputs,
        list_inputs=list_inputs,
        post_annotations=post_annotations,
        post_datasets=datasets,
        post_dataset_versions=dataset_versions,
        rps=rps,
        seconds=_seconds(requests, post_annotations, rps, processing_s),
        assumptions=assumptions,
    )
