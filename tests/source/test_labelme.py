"""LabelMe JSON: real LabelMe files land in the sandbox as an independent reading of them
says; each shape type, group, flag and image rule as the README states; bad shapes named
by file and shape."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from ingest import Config, Ingester
from ingest.cli import run_upload
from ingest.errors import SourceError
from ingest.failures import default_failures_path
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows, validate_path
from tests.helpers import input_id, sandbox_config
from tests.source.imagefiles import png, write_png
from tests.source.test_export import land, write_csv
from tests.source.test_formats_cli import plan_for
from tests.source.test_roundtrip import EXAMPLES
from tests.source.test_roundtrip import land as roundtrip_land

pytestmark = pytest.mark.anyio

EXPORTS = Path(__file__).parent / "exports" / "labelme"
NOT_STORED = {"line", "linestrip", "point", "points", "mask"}


def concept(name: str) -> str:
    """A concept id by the README's rule: lower case, anything outside a-z0-9_- a '-'."""
    return re.sub(r"[^a-z0-9_-]", "-", name.strip().lower())


def floats(value: Any) -> Any:
    """Numbers as a Struct gives them back (floats), recursively."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats(v) for v in value]
    return value


def copy_exports(tmp_path: Path) -> Path:
    root = tmp_path / "labelme"
    shutil.copytree(EXPORTS, root)
    return root


class Expected:
    """What the LabelMe files under a folder say, read here with json alone: the inputs
    (image bytes, metadata, image-level concepts) and the regions, and the shapes ingest
    cannot store (the warnings)."""

    def __init__(self, root: Path, regions: str = "both") -> None:
        self.inputs: dict[str, tuple[str, dict[str, Any], list[tuple[str, str]]]] = {}
        self.regions: list[tuple[str, str, tuple[float, ...], str, str, dict[str, Any]]] = []
        self.circles: list[tuple[str, float, float, float, float, float, str]] = []
        self.skipped: list[str] = []
        base = root.parent
        for path in sorted(root.rglob("*.json")):
            doc = json.loads(path.read_text())
            named = path.parent / doc["imagePath"]
            if named.suffix != ".json" and named.is_file():
                image, data = named, named.read_bytes()
            else:  # the embedded image, written beside the file
                data = base64.b64decode(doc["imageData"])
                image = path.parent / ".ingest-imagedata" / (path.stem + ".jpg")
            iid = input_id("file:" + image.relative_to(base).as_posix())
            w, h = doc["imageWidth"], doc["imageHeight"]
            flags = doc["flags"]
            level = sorted(
                (concept(k), k) for k, v in flags.items() if v is True and k != "__ignore__"
            )
            self.inputs[iid] = (
                hashlib.sha1(data).hexdigest(),
                floats({"flags": flags}) if flags else {},
                level,
            )
            shown = path.relative_to(base).as_posix()
            for k, shape in enumerate(doc["shapes"], start=1):
                kind, label = shape["shape_type"], shape["label"]
                if kind in NOT_STORED or label == "__ignore__":
                    self.skipped.append(f"{shown} shape {k}")
                    continue
                info: dict[str, Any] = {"shape_type": kind}
                if shape.get("group_id") is not None:
                    info["group_id"] = shape["group_id"]
                if shape.get("flags"):
                    info["flags"] = shape["flags"]
                if shape.get("description"):
                    info["description"] = shape["description"]
                xs = [p[0] / w for p in shape["points"]]
                ys = [p[1] / h for p in shape["points"]]
                if kind == "circle":
                    (cx, cy), (ex, ey) = shape["points"]
                    r = math.hypot(ex - cx, ey - cy)
                    self.circles.append((iid, cx, cy, r, w, h, label))
                    continue
                box = (min(xs), min(ys), max(xs), max(ys))
                if kind == "rectangle" or regions != "polygons":
                    self.add(iid, "box", box, label, info)
                if kind != "rectangle" and regions != "boxes":
                    flat = tuple(v for xy in zip(xs, ys, strict=True) for v in xy)
                    self.add(iid, "polygon", flat, label, info)

    def add(
        self, iid: str, kind: str, coords: tuple[float, ...], label: str, info: dict[str, Any]
    ) -> None:
        clamped = tuple(min(max(v, 0.0), 1.0) for v in coords)
        self.regions.append((iid, kind, clamped, concept(label), label, floats(info)))


def held(sb: Sandbox) -> tuple[dict[str, Any], list[Any]]:
    """What the sandbox holds: inputs as (bytes' sha1, metadata, concepts), and regions as
    (input, kind, coordinates, concept id, concept name, annotation_info)."""
    inputs = {
        iid: (
            hashlib.sha1(x.data.image.base64).hexdigest(),
            MessageToDict(x.data.metadata),
            sorted((c.id, c.name) for c in x.data.concepts),
        )
        for iid, x in sb.inputs.items()
    }
    regions = []
    for ann in sb.annotations.values():
        assert not isinstance(ann, str)
        region = ann.data.regions[0]
        info = region.region_info
        if info.HasField("polygon"):
            kind = "polygon"
            coords: tuple[float, ...] = tuple(
                v for p in info.polygon.points for v in (p.col, p.row)
            )
        else:
            kind = "box"
            b = info.bounding_box
            coords = (b.left_col, b.top_row, b.right_col, b.bottom_row)
        (c,) = region.data.concepts
        regions.append(
            (ann.input_id, kind, coords, c.id, c.name, MessageToDict(ann.annotation_info))
        )
    return inputs, regions


def same_regions(got: list[Any], want: list[Any]) -> None:
    """The same regions, coordinates to float32 precision."""

    def key(r: Any) -> Any:
        return (r[0], r[1], r[3], tuple(round(v, 3) for v in r[2]))

    got, want = sorted(got, key=key), sorted(want, key=key)
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in got] == [
        (r[0], r[1], r[3], r[4], r[5]) for r in want
    ]
    for g, w in zip(got, want, strict=True):
        assert g[2] == pytest.approx(w[2], abs=1e-6)


async def upload(data: DatasetPath, **options: Any) -> tuple[Any, tuple[dict[str, Any], list[Any]]]:
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
            async with Ingester(sandbox_config(sb, **options)) as ing:
                report = await ing.run(data)
            return report, held(sb)


@pytest.mark.parametrize("regions", ["boxes", "polygons", "both"])
async def test_labelmes_own_examples_land_as_their_files_say(tmp_path: Path, regions: str) -> None:
    root = copy_exports(tmp_path)
    assert detect(root) == "labelme"
    report, (inputs, regions_held) = await upload(DatasetPath(root, regions=regions))
    want = Expected(root, regions)
    assert inputs == want.inputs
    circles = [r for r in regions_held if r[5].get("shape_type") == "circle"]
    same_regions([r for r in regions_held if r not in circles], want.regions)
    # the circle: a polygon whose every vertex is within a pixel of the circle, and its box
    ((iid, cx, cy, r, w, h, label),) = want.circles
    kinds = {"boxes": ["box"], "polygons": ["polygon"], "both": ["box", "polygon"]}[regions]
    assert sorted(c[1] for c in circles) == kinds
    for c in circles:
        assert c[0] == iid and c[3] == concept(label)
        xs, ys = [v * w for v in c[2][0::2]], [v * h for v in c[2][1::2]]
        if c[1] == "polygon":
            assert len(xs) >= 12
            assert all(
                abs(math.hypot(x - cx, y - cy) - r) <= 1.0 for x, y in zip(xs, ys, strict=True)
            )
        else:
            assert xs == pytest.approx([cx - r, cx + r], abs=1.0)
            assert ys == pytest.approx([cy - r, cy + r], abs=1.0)
    # every shape ingest cannot store is named, with its file and number
    named = [re.sub(r": .*", "", n) for n in report.notes if n.endswith("; not uploaded")]
    assert named == want.skipped
    assert report.rows_failed == 0 and report.rows_invalid == 0


async def test_the_odd_cases_of_the_real_files(tmp_path: Path) -> None:
    """What the examples hold that needs a rule: shared group ids, __ignore__, image flags,
    an imagePath naming the JSON itself with the image embedded."""
    root = copy_exports(tmp_path)
    async with open_rows(DatasetPath(root, regions="polygons")) as src:
        items = [i async for i in src]
        notes = list(src.stats.notes)
    rows = [i for i in items if isinstance(i, Row)]
    assert len(rows) == len(items)
    by_file: dict[str, list[Row]] = {}
    for row in rows:
        by_file.setdefault(row.raw["file"].split("/")[1], []).append(row)
    # 2011_000003: two person polygons in group 0 stay two annotations, the group kept
    seg = [r for r in rows if r.raw["file"].endswith("2011_000003.jpg")]
    grouped = [r for r in seg if r.info and r.info.get("group_id") == 0]
    assert [r.pos_concepts for r in grouped] == [("person",), ("person",)]
    assert len({r.annotation_id for r in grouped}) == 2
    # 2011_000006: four sofa parts in one group, four annotations
    sofa = [r for r in rows if r.pos_concepts == ("sofa",)]
    assert len(sofa) == 4 and {r.info["group_id"] for r in sofa if r.info} == {0}
    # the classification examples: image-level concepts from the true flags, every flag kept
    cat = [r for r in rows if r.raw["file"].endswith("0001.jpg")]
    assert [(r.pos_concepts, r.annotation_id, r.metadata) for r in cat] == [
        (("cat",), "", {"flags": {"__ignore__": False, "cat": True, "dog": False}})
    ]
    # the tutorial: its imagePath is the JSON itself; the embedded image is uploaded
    tutorial = {r.path for r in by_file["tutorial"]}
    written = root / "tutorial/.ingest-imagedata/apc2016_obj3.jpg"
    assert tutorial == {str(written.resolve())}
    doc = json.loads((root / "tutorial/apc2016_obj3.json").read_text())
    assert written.read_bytes() == base64.b64decode(doc["imageData"])
    assert any("1 image(s) are uploaded from the image embedded" in n for n in notes)


async def test_positions_do_not_depend_on_regions(tmp_path: Path) -> None:
    root = copy_exports(tmp_path)
    lines = {}
    for regions in ("boxes", "polygons", "both"):
        async with open_rows(DatasetPath(root, regions=regions)) as src:
            lines[regions] = {i.line: i for i in [x async for x in src]}
            total = src.stats.rows_total
    both, boxes, polygons = lines["both"], lines["boxes"], lines["polygons"]
    assert set(both) == set(boxes) | set(polygons)
    for line in set(boxes) & set(both):
        assert boxes[line].annotation_id == both[line].annotation_id  # type: ignore[union-attr]
    assert max(both) <= total + 1


def doc(shapes: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": "5.7.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": "a.png",
        "imageData": None,
        "imageHeight": 50,
        "imageWidth": 100,
    }
    out.update(top)
    return out


def shape(label: str, kind: str, points: list[list[Any]], **more: Any) -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "description": "",
        "shape_type": kind,
        "flags": {},
        "mask": None,
        **more,
    }


def write(folder: Path, name: str, content: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(content))
    return path


async def read(data: Path | DatasetPath) -> tuple[list[Row | InvalidRow], Any]:
    with anyio.fail_after(20):
        async with open_rows(data) as src:
            return [i async for i in src], src.stats


async def test_bad_shapes_are_invalid_rows_naming_file_and_shape(tmp_path: Path) -> None:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 100, 50)
    write(
        folder,
        "a.json",
        doc(
            [
                shape("dog", "rectangle", [[60, 40], [10, 5]]),  # corners in either order
                shape("dog", "rectangle", [[1, 1], [2, 2], [3, 3]]),
                shape("dog", "polygon", [[1, 1], [2, 2]]),
                shape("dog", "polygon", [[1, 1], [2, 2], [3, 3]]),  # on one line
                shape("dog", "polygon", [[1, 1], [200, 2], [3, 30]]),  # outside
                shape("", "polygon", [[1, 1], [20, 2], [3, 30]]),
                shape("dog", "circle", [[5, 5], [5, 5]]),
                shape("dog", "rectangle", [[1, "x"], [2, 2]]),
                shape("cat", "circle", [[95, 25], [95, 35]], group_id=3, description="edge"),
            ]
        ),
    )
    items, _ = await read(DatasetPath(folder, regions="both"))
    bad = {i.line: (i.column, i.reason) for i in items if isinstance(i, InvalidRow)}
    assert bad == {
        5: ("left_col", "lm/a.json shape 2: a rectangle has 2 points, this one 3"),
        7: (
            "polygon",
            "lm/a.json shape 3: the polygon has 4 numbers; 3 or more x, y pairs are needed",
        ),
        9: ("polygon", "lm/a.json shape 4: the polygon has no area (its points are on one line)"),
        11: (
            "polygon",
            "lm/a.json shape 5: point 2 of the polygon has x = 200, outside the 100x50 image",
        ),
        13: ("pos_concepts", "lm/a.json shape 6: the shape has no label"),
        15: ("polygon", "lm/a.json shape 7: the circle has no radius (its two points are one)"),
        17: ("left_col", "lm/a.json shape 8: points must be a list of [x, y] numbers"),
    }
    good = {i.line: i for i in items if isinstance(i, Row)}
    assert sorted(good) == [3, 19, 20]  # the first rectangle; the circle's box and polygon
    assert good[3].coords == pytest.approx((0.1, 0.1, 0.6, 0.8))
    # the circle reaching past the right edge is cut there
    circle = good[20].polygon
    assert circle is not None and max(circle[0::2]) == 1.0
    assert good[19].coords == pytest.approx((0.85, 0.3, 1.0, 0.7), abs=0.01)
    assert good[20].info == {"shape_type": "circle", "group_id": 3, "description": "edge"}


async def test_where_the_image_is_looked_for(tmp_path: Path) -> None:
    lm = tmp_path / "project" / "lm"
    write_png(tmp_path / "images" / "b.png", 100, 50)
    write_png(lm / "small.png", 10, 10)
    box = [shape("dog", "rectangle", [[10, 5], [60, 40]])]
    embedded = base64.b64encode(png(100, 50)).decode()
    write(lm, "a.json", doc(box, imagePath="missing.png"))
    write(lm, "b.json", doc(box, imagePath="..\\..\\images\\b.png"))  # as LabelMe on Windows
    write(lm, "c.json", doc(box, imagePath="small.png", imageData=embedded))
    write(lm, "d.json", doc(box, imagePath="small.png"))
    write(lm, "e.json", doc(box, imagePath="../../images/b.png"))  # b.json's image again
    items, stats = await read(lm)
    a, b, c, d, e = [i for i in items if i.line % 3 == 0]  # each file's box row
    assert isinstance(a, InvalidRow) and a.column == "file"
    assert a.reason.startswith("project/lm/a.json: imagePath 'missing.png' names no image file")
    # an image outside the folder: paths are relative to the common folder, and said so
    assert isinstance(b, Row) and b.raw["file"] == "images/b.png"
    base = await anyio.Path(tmp_path).resolve()
    assert any(f"relative to {base}" in n for n in stats.notes)
    # an imagePath file of another size than the JSON says gives way to the embedded image
    assert isinstance(c, Row) and c.raw["file"] == "project/lm/.ingest-imagedata/c.png"
    assert (lm / ".ingest-imagedata/c.png").read_bytes() == png(100, 50)
    assert isinstance(d, InvalidRow) and d.reason == (
        "project/lm/d.json: the image small.png is 10x10, but the file says imageWidth 100, "
        "imageHeight 50: its shapes were drawn on another image, and it embeds none (imageData)"
    )
    assert isinstance(e, InvalidRow) and e.reason == (
        "project/lm/e.json: an earlier LabelMe file names the same image (images/b.png)"
    )


async def test_one_file_by_its_path_and_the_format_override(tmp_path: Path) -> None:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 100, 50)
    one = write(folder, "a.json", doc([shape("dog", "rectangle", [[10, 5], [60, 40]])]))
    assert detect(one) == "labelme"
    items, _ = await read(one)
    assert [(i.line, i.pos_concepts) for i in items if isinstance(i, Row)] == [(3, ("dog",))]
    # a COCO file is still COCO; a folder whose first files are not LabelMe's needs --format
    coco = write(tmp_path, "coco.json", {"images": [], "annotations": [], "categories": []})
    assert detect(coco) == "coco"
    for n in range(8):
        write(folder, f"0{n}.json", {"notes": n})
    with pytest.raises(SourceError, match="a folder ingest cannot read"):
        detect(folder)  # not recognised from the path...
    items, stats = await read(DatasetPath(folder, format="labelme"))  # ...but read when asked
    assert [(i.line, i.pos_concepts) for i in items if isinstance(i, Row)] == [(3, ("dog",))]
    assert "lm/00.json: not a LabelMe file (no 'shapes' list); not read" in stats.warnings


async def test_two_labels_making_one_concept_id_stop_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 100, 50)
    write(folder, "a.json", doc([shape("Dog", "rectangle", [[1, 1], [5, 5]])]))
    write(folder, "b.json", doc([shape("dog", "rectangle", [[1, 1], [5, 5]])]))
    with pytest.raises(SourceError, match="'Dog' and 'dog' both become the concept id 'dog'"):
        await read(folder)
    (folder / "c.json").write_text('{"shapes": [\n{"label": "x",\n}]}')
    with pytest.raises(SourceError, match=r"c.json: not valid JSON: .* at line 3"):
        await read(folder)


async def test_unknown_keys_warn_and_strict_refuses_them(tmp_path: Path) -> None:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 100, 50)
    box = shape("dog", "rectangle", [[1, 1], [5, 5]], score=0.9)
    write(folder, "a.json", doc([box, shape("road", "line", [[1, 1], [5, 5]])], otherData={}))
    _, stats = await read(folder)
    assert stats.warnings == [
        "lm/a.json: the key 'otherData' is not one ingest reads; not uploaded",
        "lm/a.json shape 1: the shape key 'score' is not one ingest reads; not uploaded",
        "lm/a.json shape 2: a line (line) is not a box or a polygon; not uploaded",
    ]
    with anyio.fail_after(30):
        async with Sandbox(SandboxOptions(rps=0)) as sb:
            config: Config = sandbox_config(sb, strict=True)
            async with Ingester(config) as ing:
                with pytest.raises(SourceError, match="nothing sent"):
                    await ing.run(folder)
            assert not sb.inputs


async def test_the_written_csv_uploads_the_same_as_the_files(tmp_path: Path) -> None:
    root = copy_exports(tmp_path)
    out = tmp_path / "rows.csv"
    assert await write_csv(root, out, "--regions", "both") == 0
    summary = await validate_path(DatasetPath(root, regions="both"))
    direct = await land(DatasetPath(root, regions="both"))
    assert len(direct[1]) == summary.boxes
    assert await land(out) == direct


async def test_the_example_lands_as_the_coco_example_does(tmp_path: Path) -> None:
    """``examples/labelme`` holds the images and boxes of ``examples/coco``."""
    for name in ("coco", "labelme"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    coco = await roundtrip_land(tmp_path / "coco/annotations.json")
    labelme = await roundtrip_land(tmp_path / "labelme")
    assert labelme == coco and len(coco[0]) == 5 and len(coco[1]) == 4


async def test_a_misspelt_key_stops_with_a_did_you_mean(tmp_path: Path) -> None:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 100, 50)
    content = doc([shape("dog", "rectangle", [[1, 1], [5, 5]])])
    content["imagepath"] = content.pop("imagePath")
    write(folder, "a.json", content)
    with pytest.raises(SourceError) as err:
        await read(folder)
    assert str(err.value) == (
        "lm/a.json: the key 'imagepath' is not one ingest reads; did you mean 'imagePath'?"
    )


async def test_a_bad_shape_goes_to_the_failures_file_and_uploads_once_fixed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 100, 50)
    shapes = [
        shape("dog", "rectangle", [[10, 5], [60, 40]]),
        shape("cat", "polygon", [[10, 10], [300, 10], [20, 40]], group_id=1),
    ]
    write(folder, "a.json", doc(shapes))
    console = Console(file=io.StringIO())
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
            first = await run_upload(plan_for(sb, folder, regions="polygons"), console)
            assert first.exit_status == 1 and len(sb.annotations) == 1
            failures = default_failures_path(folder)
            with failures.open(newline="") as fh:
                (row,) = list(csv.DictReader(fh))
            assert row["line"] == "5" and row["file"] == "lm/a.png"  # the shape's first position
            assert "lm/a.json shape 2: point 2 of the polygon has x = 300" in row["error"]
            assert json.loads(row["annotation_info"]) == {"shape_type": "polygon", "group_id": 1}
            # fixed by hand (x 300 -> 30, normalised), the failures file uploads as a CSV
            row["polygon"] = "0.1 0.2 0.3 0.2 0.2 0.8"
            with failures.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
                writer.writerow(row)
            fixed = await run_upload(plan_for(sb, failures), console)
            assert fixed.exit_status == 0 and len(sb.annotations) == 2
            polygons = [
                a
                for a in sb.annotations.values()
                if not isinstance(a, str) and a.data.regions[0].region_info.HasField("polygon")
            ]
            assert [MessageToDict(p.annotation_info) for p in polygons] == [
                {"shape_type": "polygon", "group_id": 1.0}
            ]
            again = await run_upload(plan_for(sb, folder, regions="polygons"), console)
            assert again.report.rows_resumed == 1 and again.report.annotations_created == 0
