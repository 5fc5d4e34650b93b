"""The official SDK's CSV (``inputid,input,concepts,metadata,geopoints``): uploaded
unchanged, it stores what ``Dataset.upload_from_csv`` stores - checked field by field
against the SDK itself uploading the same file to a sandbox - without the SDK's failure
modes; the SDK's own test CSV (text) is refused row by row, saying why."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from ingest import ids
from ingest.cli import main, run_upload
from ingest.errors import MissingColumnError, SourceError
from ingest.failures import default_failures_path
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows, validate_path
from tests.helpers import ROOT, cli_env, sandbox_config
from tests.source.imagefiles import write_png
from tests.source.test_formats_cli import plan_for

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"rps": 0, "processing": (0.0, 0.0)}
TARBALL = ROOT.parent / "shared" / "third-party" / "clarifai-python-tests-8dbe72bb.tar.gz"
HEADER = "inputid,input,concepts,metadata,geopoints"

# what the SDK reads well: ids kept, concepts split on ",", single-quoted and JSON
# metadata, geo points (the row without concepts last: see test_what_the_sdk_gets_wrong)
URLS = f"""\
{HEADER}
cat-1,https://img.example.com/1.jpg,"cat,pet","{{'split': 'train', 'n': 2}}","-73.98,40.75"
dog-1,https://img.example.com/2.jpg,dog,"{{""k"": [1, 2], ""deep"": {{""x"": null}}}}",
cat-2,https://img.example.com/3.jpg,cat,,"2.35,48.85"
bare,https://img.example.com/4.jpg,,"{{'source': 'web'}}",
"""

UPLOAD = """
import json, os, sys
os.environ["TQDM_DISABLE"] = "1"
from clarifai.client.dataset import Dataset
base, user, app, pat, path, kind = sys.argv[1:7]
dataset = Dataset(dataset_id="ds", user_id=user, app_id=app, base_url=base, pat=pat)
dataset.upload_from_csv(csv_path=path, input_type="image", csv_type=kind, labels=True)
print(json.dumps("uploaded"))
"""
"""The SDK's upload of a CSV, as its docs show it, run in its own process (its globals stay
out of this one)."""


def sdk_missing() -> str | None:
    """Why the SDK cannot run here, or None (it is not imported in this process)."""
    if importlib.util.find_spec("clarifai") is None:  # pragma: no cover - `make test` has it
        return "the clarifai SDK (the bench extra) is not installed"
    return None


async def sdk_upload(sb: Sandbox, path: Path, kind: str) -> None:
    """``Dataset("ds").upload_from_csv(path, input_type="image", csv_type=kind)`` into
    ``sb``, from the CSV's folder (where the SDK reads relative file paths)."""
    why = sdk_missing()
    if why is not None:  # pragma: no cover
        pytest.skip(why)
    args = [sb.base_url, sb.options.user_id, sb.options.app_id, sb.options.pats[0], path.name]
    done = await anyio.run_process(
        [sys.executable, "-c", UPLOAD, *args, kind],
        cwd=path.parent,
        env=cli_env(TQDM_DISABLE="1"),
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def stored(sb: Sandbox, *, by_id: bool = True) -> dict[str, dict[str, Any]]:
    """Every input's fields as the sandbox holds them (what a user sees listing them),
    by input id (or by the image: a URL, or a hash of its bytes)."""
    out: dict[str, dict[str, Any]] = {}
    for iid, inp in sb.inputs.items():
        data = inp.data
        image = data.image.url or hashlib.sha256(data.image.base64).hexdigest()
        out[iid if by_id else image] = {
            "image": image,
            "concepts": [(c.id, c.name, c.value) for c in data.concepts],
            "metadata": MessageToDict(data.metadata),
            "geo": MessageToDict(data.geo),
            "datasets": list(inp.dataset_ids),
        }
    return out


@asynccontextmanager
async def by_sdk_and_ingest(path: Path, kind: str) -> AsyncIterator[tuple[Sandbox, Sandbox]]:
    """Two fresh sandboxes: ``path`` uploaded into the first by the SDK (``csv_type``
    ``kind``) and into the second by ingest, which must exit 0."""
    with anyio.fail_after(120):
        async with (
            Sandbox(SandboxOptions(**FAST)) as by_sdk,
            Sandbox(SandboxOptions(**FAST)) as ours,
        ):
            await sdk_upload(by_sdk, path, kind)
            result = await ingest_upload(ours, path)
            assert result.exit_status == 0 and result.report.rows_failed == 0
            yield by_sdk, ours


async def ingest_upload(sb: Sandbox, path: Path, *, restart: bool = False) -> Any:
    """``ingest upload PATH --dataset-id ds`` into ``sb`` (``--restart``: no journal)."""
    plan = plan_for(sb, path)
    plan.config, plan.restart = sandbox_config(sb, dataset_id="ds"), restart
    return await run_upload(plan, Console(file=io.StringIO()))


async def test_a_csv_of_urls_stores_what_the_sdk_stores(tmp_path: Path) -> None:
    path = tmp_path / "urls.csv"
    path.write_text(URLS)
    assert detect(path) == "sdk-csv"
    async with by_sdk_and_ingest(path, "url") as (by_sdk, ours):
        sdk = stored(by_sdk)
        assert sdk == stored(ours)
        assert set(sdk) == {"cat-1", "dog-1", "cat-2", "bare"}  # the file's ids, kept
        assert sdk["cat-1"]["geo"] == {"geoPoint": {"longitude": -73.98, "latitude": 40.75}}
        # a user moving over runs ingest on the same file, in the same app: every input is
        # there as it should be, nothing is patched
        result = await ingest_upload(by_sdk, path, restart=True)
        assert result.report.inputs_existing == 4 and result.report.inputs_patched == 0
        assert "PatchInputs" not in by_sdk.stats.requests
        assert stored(by_sdk) == sdk
        # sent again (--restart: no journal), still nothing to patch
        again = await ingest_upload(ours, path, restart=True)
        assert again.report.inputs_patched == 0 and stored(ours) == sdk


async def test_a_csv_of_files_stores_what_the_sdk_stores(tmp_path: Path) -> None:
    for i, name in enumerate(("a.png", "b.png", "sub/c.png")):
        write_png(tmp_path / "images" / name, 3 + i, 3)
    path = tmp_path / "files.csv"
    absolute = tmp_path / "images/sub/c.png"
    path.write_text(
        "input,concepts,metadata,geopoints\n"
        'images/a.png,"cat,pet",,"10.5,-20.25"\n'
        "images/b.png,dog,\"{'k': 1}\",\n"
        f"{absolute},bird,,\n"
    )
    async with by_sdk_and_ingest(path, "file_path") as (by_sdk, ours):
        # without an inputid column the SDK makes random ids; ingest's come from the
        # files' paths (the same on every run): the inputs match by their bytes
        assert stored(by_sdk, by_id=False) == stored(ours, by_id=False)
        assert set(ours.inputs) == {
            ids.input_id("file:images/" + name) for name in ("a.png", "b.png", "sub/c.png")
        }


# The SDK's failure modes, and what ingest does instead: every line is one case.
ODD = f"""\
\ufeff{HEADER},dataset_id
spaced,https://img.example.com/s.jpg," cat , dog ,,",,,
empty-first,https://img.example.com/e.jpg,,,,
after-empty,https://img.example.com/a.jpg,cat,"{{""note"": ""it's""}}",,
,https://img.example.com/no-id.jpg,cat,"{{'quoted': 'yes'}}",,extra
twice,https://img.example.com/t1.jpg,cat,,,
poodle,https://img.example.com/p.jpg,standard poodle,,,
far,https://img.example.com/f.jpg,cat,,"1,2,3",
video,https://img.example.com/v.mp4,cat,,,
local,images/x.png,cat,,,
listed,https://img.example.com/l.jpg,cat,[1],,
twice,https://img.example.com/t2.jpg,dog,,,
twice,https://img.example.com/t1.jpg,bird,,,
"""


async def read(path: Path | DatasetPath) -> list[Row | InvalidRow]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            return [item async for item in src]


async def test_what_the_sdk_gets_wrong_ingest_reads_as_meant(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(ODD, encoding="utf-8")
    items = {i.line: i for i in await read(path)}
    rows = {i.line: i for i in items.values() if isinstance(i, Row)}
    # spaces around concepts and empty pieces (ids the SDK would send as they are)
    assert rows[2].pos_concepts == ("cat", "dog") and rows[2].input_id == "spaced"
    # a row without concepts does not take the later rows' (the SDK reuses its variable)
    assert rows[3].pos_concepts == () and rows[4].pos_concepts == ("cat",)
    # JSON with an apostrophe (the SDK turns it into '"' and fails the whole file)
    assert rows[4].metadata == {"note": "it's"}
    # the SDK's single-quoted metadata; an empty inputid: an id from the URL; ingest's
    # own columns (dataset_id) are read too
    no_id = rows[5]
    assert no_id.metadata == {"quoted": "yes"}
    assert no_id.input_id == ids.input_id("https://img.example.com/no-id.jpg")
    assert no_id.dataset_id == "extra"
    # one id, two rows: one input; another image under an id already given fails,
    # naming the row that gave it (the SDK's second input fails as a duplicate id)
    assert rows[6].input_id == rows[13].input_id == "twice"
    invalid = {line: i.message() for line, i in items.items() if isinstance(i, InvalidRow)}
    assert invalid == {
        7: "line 7, column 'concepts': concept 'standard poodle' contains a space; ids may use "
        "only A-Z, a-z, 0-9, '_' and '-', 1 to 128 characters",
        8: "line 8, column 'geopoints': geo '1,2,3' has 3 value(s); a geo point is "
        "'longitude,latitude' in degrees (the SDK's geopoints cell)",
        9: "line 9, column 'input': input 'https://img.example.com/v.mp4' is a video: ingest "
        "uploads images (the SDK's input_type 'image')",
        10: "line 10, column 'input': input 'images/x.png' is not a URL, but this file's "
        "inputs are URLs (its first row's is): give one kind per file, as the SDK's "
        "csv_type does",
        11: "line 11, column 'metadata': metadata must be a JSON object ({...}), not a list",
        12: "line 12, column 'input': inputid 'twice' is the input of line 6 "
        "('https://img.example.com/t1.jpg'): one id names one image; give this row its own id",
    }
    # the failed rows are ingest's own CSV rows
    bad = items[8]
    assert isinstance(bad, InvalidRow)
    assert bad.raw == {
        "input_id": "far",
        "url": "https://img.example.com/f.jpg",
        "pos_concepts": "cat",
        "metadata": "",
        "geo": "1,2,3",
        "dataset_id": "",
    }
    # --concept-ids names makes an id of a name, and keeps the name
    named = {i.line: i for i in await read(DatasetPath(path, concept_ids="names"))}
    poodle = named[7]
    assert isinstance(poodle, Row) and poodle.pos_concepts == ("standard-poodle",)
    assert poodle.concept_names is not None
    assert poodle.concept_names["standard-poodle"] == "standard poodle"


async def test_the_odd_file_lands_and_its_failures_upload_once_fixed(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(ODD, encoding="utf-8")
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:
            first = await ingest_upload(sb, path)
            assert first.exit_status == 1 and first.report.rows_failed == 6
            held = stored(sb)
            # read back by the csv module: every valid row's concepts on its input
            with path.open(newline="", encoding="utf-8-sig") as fh:
                source = list(csv.DictReader(fh))
            failed_lines = {7, 8, 9, 10, 11, 12}
            for line, row in enumerate(source, start=2):
                if line in failed_lines:
                    continue
                iid = row["inputid"] or ids.input_id(row["input"])
                concepts = [c.strip() for c in row["concepts"].split(",") if c.strip()]
                assert {c for c, _, _ in held[iid]["concepts"]} >= set(concepts)
            assert [c for c, _, _ in held["twice"]["concepts"]] == ["cat", "bird"]
            assert held["twice"]["image"] == "https://img.example.com/t1.jpg"
            with default_failures_path(path).open(newline="") as fh:
                failures = list(csv.DictReader(fh))
            by_line = {int(r["line"]): r for r in failures}
            assert sorted(by_line) == sorted(failed_lines)  # (the id's rows were grouped)
            assert list(failures[0]) == [
                "input_id", "url", "pos_concepts", "metadata", "geo", "dataset_id", "line", "error",
            ]  # fmt: skip
            # fix two rows in ingest's format and upload the failures file
            fixed = tmp_path / "fixed.csv"
            with fixed.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, list(failures[0]))
                writer.writeheader()
                writer.writerow({**by_line[7], "pos_concepts": "standard-poodle"})
                writer.writerow({**by_line[8], "geo": "1,2"})
            again = await run_upload(plan_for(sb, fixed), Console(file=io.StringIO()))
            assert again.exit_status == 0
            assert [c.id for c in sb.inputs["poodle"].data.concepts] == ["standard-poodle"]
            point = sb.inputs["far"].data.geo.geo_point
            assert (point.longitude, point.latitude) == (1.0, 2.0)


def extract_sdk_assets(tmp_path: Path, under: str = "") -> Path:
    """The SDK's own test assets (``tests/assets/UNDER``), from its tests' tarball,
    extracted under ``tmp_path`` (never copied into the repository); skips without it."""
    if not TARBALL.is_file():
        pytest.skip(
            f"the SDK's tests are not here ({TARBALL} is absent: a clone without ../shared)"
        )
    folder = f"tests/assets/{under}".rstrip("/")
    with tarfile.open(TARBALL) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(folder + "/")]
        tar.extractall(tmp_path, members=members, filter="data")
    return tmp_path / folder


@pytest.fixture
def sdk_assets(tmp_path: Path) -> Path:
    return extract_sdk_assets(tmp_path)


async def test_the_sdks_own_csv_of_text_is_refused_row_by_row(sdk_assets: Path) -> None:
    path = sdk_assets / "sample.csv"  # input,concepts: five film reviews, csv_type 'raw'
    assert detect(path) == "sdk-csv"
    summary = await validate_path(path)
    assert summary.rows == 5 and summary.valid == 0
    for item in summary.invalid:
        assert item.column == "input"
        assert item.reason.endswith(
            "is text, not an image's URL or file: ingest uploads images (the SDK's csv_type "
            "'raw' uploads text)"
        )
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:
            result = await run_upload(plan_for(sb, path), Console(file=io.StringIO()))
            assert result.exit_status == 1 and not sb.inputs
    with default_failures_path(path).open(newline="") as fh:
        failures = list(csv.DictReader(fh))
    with path.open(newline="") as fh:
        labels = [r["concepts"] for r in csv.DictReader(fh)]
    assert [r["pos_concepts"] for r in failures] == labels  # ["neg", "neg", ..., "pos"]
    assert list(failures[0]) == ["file", "pos_concepts", "line", "error"]


def write_images_csv(assets: Path) -> Path:
    """Every image of the SDK's assets in a CSV of its format: each image's folder its
    concept, a JSON object, a geo point on every other row."""
    images = sorted(p for p in assets.rglob("*") if p.suffix.lower() in (".png", ".jpeg"))
    assert len(images) == 14
    path = assets / "images.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER.split(","))
        for i, image in enumerate(images):
            rel = image.relative_to(assets).as_posix()
            geo = f"{i - 7}.5,{i * 3}.25" if i % 2 else ""
            writer.writerow([f"img-{i}", rel, image.parent.name, json.dumps({"i": i}), geo])
    return path


async def test_the_sdks_own_images_in_an_sdk_csv_land_as_the_sdk_stores_them(
    sdk_assets: Path,
) -> None:
    """The SDK's test images (a PNG, the three of ``test/``, ImageNet's JPEGs), listed in
    its CSV format with every column, by ingest and by the SDK."""
    path = write_images_csv(sdk_assets)
    async with by_sdk_and_ingest(path, "file_path") as (by_sdk, ours):
        assert len(ours.inputs) == 14 and stored(by_sdk) == stored(ours)


async def test_the_header_follows_the_sdks_rules_and_ingests(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("inputid,input,concept\nx,https://img.example.com/1.jpg,cat\n")
    with pytest.raises(
        SourceError, match="column 'concept' is not one of the SDK's CSV; did you mean 'concepts'"
    ):
        await read(path)
    path.write_text("input,concepts,notes\nhttps://img.example.com/1.jpg,cat,seen\n")
    async with open_rows(path) as src:
        assert src.columns == ["url", "pos_concepts", "notes"]
        assert src.stats.warnings == [
            f"{path}: line 1: column 'notes' is not one ingest reads; its cells are not "
            "uploaded (they come back with a failed row)"
        ]
    # --format sdk-csv on another file: the SDK's input column is missing
    path.write_text("url,pos_concepts\nhttps://img.example.com/1.jpg,cat\n")
    with pytest.raises(MissingColumnError, match="required column 'input' is missing"):
        await read(DatasetPath(path, format="sdk-csv"))


def test_validate_recognises_the_sdks_csv_and_format_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "urls.csv"
    path.write_text(URLS)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "every row is valid" in out and "images" in out
    # read as ingest's own CSV, the header lacks url and says what it is
    assert main(["validate", str(path), "--format", "csv"]) == 2
    assert capsys.readouterr().err == (
        f"ingest: error: {path}: line 1: required column 'url' is missing from the header; "
        "an 'input' column is the official SDK's CSV's: read it with --format sdk-csv\n"
    )
