"""The request arithmetic ``ingest plan`` estimates with, which the benchmarks' ceilings
use too (one implementation)."""

from __future__ import annotations

import math

from benchmarks.audit import ceiling
from ingest import pipeline
from ingest.estimate import (
    BACKLOG_CALLS,
    estimate_upload,
    upload_requests,
    verify_requests,
)


def test_an_upload_creates_and_checks_each_input_and_annotates_each_region() -> None:
    assert upload_requests(0, 0) == 0
    assert upload_requests(1, 1) == 3
    assert upload_requests(128, 128) == 3
    assert upload_requests(129, 128) == 5
    assert upload_requests(20_000, 59_441) == 2 * 157 + 465
    # the benchmarks' ceiling counts with the same arithmetic
    assert ceiling(20_000, 59_441, 15.0).requests == upload_requests(20_000, 59_441)


def test_the_estimate_counts_each_method_and_the_datasets() -> None:
    est = estimate_upload(1000, 3000, rps=15.0, datasets=2, dataset_versions=2)
    assert est.requests_by_method == {
        "PostInputs": 8,
        "ListInputs": 8,
        "PostAnnotations": 24,
        "PostDatasets": 2,
        "PostDatasetVersions": 2,
    }
    assert est.requests == 44
    smaller = estimate_upload(1000, 3000, rps=15.0, batch_size=64, check_batch_size=100)
    assert (smaller.post_inputs, smaller.list_inputs) == (16, 10)
    assert estimate_upload(0, 0, rps=15.0).seconds == 0.0


def test_time_is_the_requests_at_the_budget_and_the_last_inputs_wait() -> None:
    # a large upload: the annotations held back fill the wait, the budget is the time
    big = estimate_upload(100_000, 300_000, rps=15.0)
    assert math.isclose(big.seconds, big.requests / 15.0, rel_tol=0.01)
    # a small one: the last inputs' processing is most of it
    small = estimate_upload(10, 30, rps=15.0, processing_s=1.5)
    assert small.tail_s > 2.0 and small.seconds < 3.0
    # twice the budget, about half the time
    half = estimate_upload(100_000, 300_000, rps=30.0)
    assert math.isclose(half.seconds * 2, big.seconds, rel_tol=0.02)
    assert any("15 requests/s" in a for a in big.assumptions)


def test_the_estimate_holds_back_as_many_calls_as_the_pipeline() -> None:
    assert BACKLOG_CALLS == pipeline._MAX_BACKLOG_CALLS


def test_a_verification_reads_two_requests_per_128_images_plus_annotation_pages() -> None:
    assert verify_requests(0, 0) == 0
    assert verify_requests(128, 500) == 2
    assert verify_requests(1000, 4000) == 2 * 8
    assert verify_requests(128, 1000) == 3  # a full page: one more to see the end
    assert verify_requests(128, 2500) == 4
