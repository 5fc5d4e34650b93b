"""Grouping on disk: the counting pass, the hash-partitioned grouper, their limits."""

from __future__ import annotations

import csv
import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.source import SourceStats, open_rows
from ingest.source.csvfile import CsvSource
from ingest.source.grouping import (
    BUCKET_BYTES,
    DiskGrouper,
    _scan_bytes,
    _scan_csv,
    remove_stale,
    scan_order,
)
from tests.helpers import make_dataset

pytestmark = pytest.mark.anyio


def shuffled(src: Path, dst: Path, seed: int = 3) -> Path:
    with src.open(newline="") as fh:
        header, *body = list(csv.reader(fh))
    random.Random(seed).shuffle(body)
    with dst.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(body)
    return dst


def grouped_by_url(src: Path, dst: Path) -> Path:
    with src.open(newline="") as fh:
        header, *body = list(csv.reader(fh))
    order: dict[str, list[list[str]]] = {}
    for row in body:
        order.setdefault(row[0], []).append(row)
    with dst.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for rows in order.values():
            writer.writerows(rows)
    return dst


def test_groups_come_back_whole_in_the_order_added_and_the_folder_goes(tmp_path: Path) -> None:
    rng = random.Random(1)
    records = [(f"k{rng.randrange(300)}", i, "x" * rng.randrange(50)) for i in range(20_000)]
    with DiskGrouper(tmp_path, expected_bytes=BUCKET_BYTES - 1, key=lambda r: r[0]) as grouper:
        assert grouper.buckets == 1
        for record in records:
            grouper.add(record)
        folder = grouper.dir
        assert folder.parent == tmp_path and folder.is_dir()
        groups = list(grouper.groups())
    assert not folder.exists()
    expected: dict[str, list[list[object]]] = {}
    for record in records:
        expected.setdefault(record[0], []).append(list(record))
    assert len(groups) == len(expected)
    for group in groups:
        assert group == expected[group[0][0]]


def test_many_buckets_keep_every_record_once(tmp_path: Path) -> None:
    records = [(f"key-{i % 997}", i) for i in range(50_000)]
    with DiskGrouper(tmp_path, expected_bytes=40 * 2**20, key=lambda r: r[0]) as grouper:
        assert grouper.buckets == 40 * 2**20 // BUCKET_BYTES > 1
        for record in records:
            grouper.add(record)
        seen = [tuple(r) for group in grouper.groups() for r in group]
    assert sorted(seen, key=lambda r: r[1]) == records


def test_a_folder_left_by_a_killed_process_is_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"ingest-group-{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "0000").write_bytes(b"x" * 100)
    mine = tmp_path / f"ingest-group-{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / "unrelated"
    other.mkdir()
    remove_stale(tmp_path)
    assert not stale.exists() and mine.exists() and other.exists()


async def test_scan_tells_grouped_from_scattered(tmp_path: Path) -> None:
    data = make_dataset(150, seed=11)
    raw = data.write(tmp_path / "raw.csv")  # some URLs come back far down the file
    grouped = grouped_by_url(raw, tmp_path / "grouped.csv")
    scan = await scan_order(grouped, 0, -1)
    assert scan.grouped and scan.records == len(data.rows)
    scan = await scan_order(raw, 0, -1)
    assert not scan.grouped and scan.records == len(data.rows)
    assert scan.stretches > len({r["url"] for r in data.rows})


async def test_a_scan_may_stop_at_the_first_image_that_comes_back(tmp_path: Path) -> None:
    data = make_dataset(150, seed=11)
    path = shuffled(data.write(tmp_path / "raw.csv"), tmp_path / "shuffled.csv")
    grouped = grouped_by_url(path, tmp_path / "grouped.csv")
    early = await scan_order(path, 0, -1, until_scattered=True)
    assert not early.grouped and not early.complete
    assert 0 < early.records < len(data.rows)
    full = await scan_order(grouped, 0, -1, until_scattered=True)
    assert full.grouped and full.complete and full == await scan_order(grouped, 0, -1)


async def read_all(path: Path, tmp_dir: Path) -> tuple[list[Row | InvalidRow], SourceStats]:
    out: list[Row | InvalidRow] = []
    async with open_rows(path, group=True, tmp_dir=tmp_dir) as src:
        async for batch in src.batches():
            out.extend(batch)
    return out, src.stats


async def test_a_scattered_file_reads_grouped_with_its_own_line_numbers(tmp_path: Path) -> None:
    data = make_dataset(200, seed=5)
    path = shuffled(data.write(tmp_path / "raw.csv"), tmp_path / "shuffled.csv")
    tmp_dir = tmp_path / "tmp"
    with anyio.fail_after(30):
        rows, stats = await read_all(path, tmp_dir)
    assert stats.grouped and stats.rows_total == len(data.rows)
    assert stats.images_total == len({r["url"] for r in data.rows})  # the counting pass's
    assert 0 < stats.grouping_temp_bytes <= 1.5 * path.stat().st_size
    assert list(tmp_dir.iterdir()) == []  # removed once read
    # every row once, named by its line in the shuffled file
    with path.open(newline="") as fh:
        body = list(csv.DictReader(fh))
    assert sorted(r.line for r in rows) == list(range(2, len(body) + 2))
    for r in rows:
        if isinstance(r, Row):
            assert r.url == body[r.line - 2]["url"]
    valid = [r for r in rows if isinstance(r, Row)]
    stretches = [valid[0].input_id] + [
        b.input_id for a, b in itertools.pairwise(valid) if a.input_id != b.input_id
    ]
    assert len(stretches) == len(set(stretches)) == len({r.input_id for r in valid})
    # rows of one image keep the file's order
    for iid in set(stretches):
        lines = [r.line for r in valid if r.input_id == iid]
        assert lines == sorted(lines)
    invalid = sorted(r.line for r in rows if isinstance(r, InvalidRow))
    bad = {tuple(data.rows[line - 2].values()) for line in data.invalid_lines}
    assert invalid == [i for i, row in enumerate(body, start=2) if tuple(row.values()) in bad]


async def test_a_grouped_file_is_read_as_it_is_without_temp_files(tmp_path: Path) -> None:
    data = make_dataset(100, seed=2)
    path = grouped_by_url(data.write(tmp_path / "raw.csv"), tmp_path / "grouped.csv")
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    rows, stats = await read_all(path, tmp_dir)
    assert not stats.grouped and stats.grouping_temp_bytes == 0
    assert stats.rows_total == len(rows) == len(data.rows)
    assert stats.images_total == len({r["url"] for r in data.rows})
    assert [r.line for r in rows] == list(range(2, len(rows) + 2))  # the file's order
    assert list(tmp_dir.iterdir()) == []


def test_a_full_disk_is_one_clear_error(tmp_path: Path) -> None:
    """The kernel refuses to grow a file past RLIMIT_FSIZE (EFBIG), as a full disk would."""
    code = (
        "import resource, sys\n"
        "from ingest.source.grouping import DiskGrouper\n"
        "from ingest.errors import SourceError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))\n"
        f"g = DiskGrouper({str(tmp_path)!r}, expected_bytes=10**6, key=lambda r: r[0],\n"
        "                what='x.csv')\n"
        "try:\n"
        "    for i in range(100_000):\n"
        "        g.add([str(i % 7), 'y' * 40])\n"
        "    list(g.groups())\n"
        "except SourceError as exc:\n"
        "    print(exc)\n"
        "finally:\n"
        "    g.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert message.startswith(f"no space left in {tmp_path} to group x.csv by image"), message
    assert message.endswith("free some space there or give another folder with --tmp-dir")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_names_itself() -> None:
    with pytest.raises(SourceError, match="cannot create a temp folder in /proc"):
        DiskGrouper("/proc/no-such-place", expected_bytes=1, key=lambda r: r)


CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.csv")))
async def test_the_quick_scan_agrees_with_the_csv_parser(name: str) -> None:
    """On every file of the bad-input corpus: the same records, stretches and verdict."""
    path = CORPUS / name
    try:
        async with CsvSource(path) as src:
            assert src.validator is not None
            where = (src.validator.image_index, src.validator.id_index)
            header_line = src.header_line
    except SourceError:
        pytest.skip("the header is refused before any scan")
    fast = _scan_bytes(path, *where)
    slow = await _scan_csv(path, *where, header_line=header_line)
    if fast is not None:  # else the file needs csv: scan_order falls back to it
        assert (fast.records, fast.stretches, fast.grouped) == (
            slow.records,
            slow.stretches,
            slow.grouped,
        )
