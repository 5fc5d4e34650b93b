"""validate_file, against the generator's own counts and the example."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from benchmarks.datagen import generate, main
from ingest.source import validate_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "boxes.csv"


@pytest.mark.anyio
@pytest.mark.parametrize("window", [0, 50])
async def test_validate_matches_generator(tmp_path: Path, window: int) -> None:
    p = tmp_path / "g.csv"
    counts = generate(
        p,
        images=500,
        seed=3,
        broken_rate=0.05,
        invalid_rate=0.05,
        image_level_rate=0.2,
        shuffle_window=window,
    )
    with anyio.fail_after(10):
        s = await validate_file(p)
    assert s.rows == counts["rows"]
    assert len(s.invalid) == counts["invalid_rows"] > 0
    assert s.images == counts["images"]
    assert s.boxes == counts["boxes"]
    assert s.image_level_rows == counts["image_level_rows"]
    assert s.labels == counts["labels"]
    assert counts["broken_images"] > 0


def test_generator_is_deterministic_and_exact(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main([str(a), "--images", "50", "--seed", "9", "--invalid-rows", "3"]) == 0
    generate(b, images=50, seed=9, invalid_rows=3)
    assert a.read_bytes() == b.read_bytes()
    assert generate(b, images=50, seed=9, invalid_rows=3)["invalid_rows"] == 3


@pytest.mark.anyio
async def test_example_file_matches_its_readme() -> None:
    with anyio.fail_after(10):
        s = await validate_file(EXAMPLE)
    assert (s.rows, s.images, s.boxes, s.image_level_rows, s.labels) == (616, 200, 580, 34, 12)
    assert [i.line for i in s.invalid] == [99, 520]
    broken = {line.split(",")[0] for line in EXAMPLE.read_text().splitlines() if "broken" in line}
    assert len(broken) == 6
