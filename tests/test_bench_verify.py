"""The verification benchmark's machinery at a tiny size: every run counts, the requests
are the arithmetic's, the tables render; a client killed by a signal fails it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import verify
from tests.test_bench_failures import oom_killer

TINY = verify.Sizes(requests_images=150, memory_images=150, big_images=600)


def test_the_benchmark_counts_every_run_at_a_tiny_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(verify, "QUICK", TINY)
    assert verify.main(["--quick", "--big", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "verify.json").read_text())
    assert out["failures"] == []
    checks = out["requests"]["runs"][1:]
    assert [r["client"] for r in checks] == ["ingest verify (grouped)", "ingest verify (shuffled)"]
    for r in checks:
        # 150 images: two batches, each one ListInputs and one page of annotations
        assert r["requests_by_method"] == {"ListAnnotations": 2, "ListInputs": 2}
        assert r["requests_per_128_images"] == 2.0 == r["predicted_requests"] / 2
        assert r["writes"] == {} and r["returncode"] == 0
    memory = out["memory"]["runs"]
    assert [(r["client"], r.get("app_holds")) for r in memory] == [
        ("ingest upload (fills the app)", None),
        ("ingest verify (shuffled)", "all"),
        ("ingest verify (shuffled)", "none"),
        ("ingest verify (shuffled)", "none"),
    ]
    assert memory[2]["client_report"]["rows_differing"] == memory[2]["rows"]
    assert {t["met"] for t in out["targets"][:2]} == {True}
    page = capsys.readouterr().out
    assert "| ingest verify (shuffled) |" in page and "peak RSS at" in page


def test_a_client_killed_by_a_signal_fails_the_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(verify, "QUICK", TINY)
    with oom_killer() as killed:
        status = verify.main(["--quick", "--out", str(tmp_path)])
    assert len(killed) == 1 and status == 1
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("BENCHMARK FAILED: ")]
    assert any(f.endswith(": died from SIGKILL (a signal nobody sent)") for f in failed), err
    out = json.loads((tmp_path / "verify.json").read_text())
    assert [f"BENCHMARK FAILED: {f}" for f in out["failures"]] == failed
