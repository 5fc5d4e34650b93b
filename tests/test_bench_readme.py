"""benchmarks/README.md quotes no figure of its own: each is rendered from a results file."""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from benchmarks import readme
from tests.helpers import ROOT

PAGE = readme.README.read_text()


def test_the_page_is_its_rendering_from_the_results_files() -> None:
    """Nobody typed a figure, and nobody changed a results file without rendering."""
    assert readme.render(PAGE) == PAGE, "run python -m benchmarks.readme"


def test_every_results_file_has_its_block_once() -> None:
    for name in [*readme.BLOCKS, "index"]:
        assert PAGE.count(f"<!-- results: {name} -->") == 1, name


def grouping_results() -> dict[str, Any]:
    machine = {"cpus": 2, "python": "3.11.7", "platform": "Linux", "date": "2026-12-07"}
    way = {"cpu_s": 4.43, "peak_rss_mb": 66.2, "temp_vs_csv": 0.98}
    return {
        "provenance": {
            "command": "python -m benchmarks.grouping --images 333334 --repeats 1",
            "commit": "abcdef0123456789" + "0" * 24,
            "uncommitted_changes": False,
            "machine": machine,
        },
        "data": {"rows": 1_001_560, "images": 333_334},
        "csv_mb": 97.3,
        "repeats": 1,
        "ways": [
            {"way": "partition", **way, "x_partition": 1.0},
            {"way": "heapq", **way, "cpu_s": 8.04, "x_partition": 1.81},
        ],
        "runs": [],
        "wall_s": 95.0,
        "failures": [],
    }


def test_a_block_shows_its_files_figures_and_where_they_come_from(tmp_path: Path) -> None:
    (tmp_path / "grouping.json").write_text(json.dumps(grouping_results()))
    text = readme.render(PAGE, tmp_path)
    block = text.split("<!-- results: grouping -->")[1].split("<!-- end of results -->")[0]
    assert (
        "`python -m benchmarks.grouping --images 333334 --repeats 1` at commit `abcdef012345`"
        in block
    )
    assert "| heapq | 8.04 | 1.81 | 66 | 0.98 |" in block
    assert "1,001,560 rows on 333,334 images" in block
    # a file not there says which command writes it
    assert "_No `results/coco_sdk.json` here: `python -m benchmarks.coco_sdk` writes it._" in text
    index = text.split("<!-- results: index -->")[1].split("<!-- end of results -->")[0]
    assert "`abcdef012345` | 2026-12-07 | 1.6 min | every run counts |" in index
    assert "Run time of these files together: 1.6 min." in index


def test_results_from_other_code_are_stale(tmp_path: Path) -> None:
    out = grouping_results()
    (tmp_path / "grouping.json").write_text(json.dumps(out))
    stale = readme.stale(tmp_path)
    assert (
        "results/grouping.json: produced at abcdef0123456789" + "0" * 24 + ", whose code differs"
        in stale
    )
    assert "results/spark.json: missing" in stale
    out["provenance"]["uncommitted_changes"] = True
    (tmp_path / "grouping.json").write_text(json.dumps(out))
    assert "results/grouping.json: produced with uncommitted changes" in readme.stale(tmp_path)


def _figures(text: str) -> list[str]:
    """The figures of ``text`` that say something: with a decimal point or a thousands comma."""
    return re.findall(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.,])\d+\.\d+", text)


def test_the_readme_quotes_only_figures_of_this_page() -> None:
    """Every figure of the README's Performance section is one of this page's, as rounded
    half up to the places the README gives."""
    top = (ROOT / "README.md").read_text()
    section = top.split("## Performance", 1)[1].split("\n## ", 1)[0]
    here = {Decimal(f.replace(",", "")) for f in _figures(PAGE)}
    quoted = _figures(section)
    assert len(quoted) > 20
    missing = []
    for figure in quoted:
        value = Decimal(figure.replace(",", ""))
        step = Decimal(1).scaleb(-len(figure.partition(".")[2]))
        if not any(f.quantize(step, ROUND_HALF_UP) == value for f in here):
            missing.append(figure)
    assert not missing, f"README figures from nowhere on benchmarks/README.md: {missing}"
