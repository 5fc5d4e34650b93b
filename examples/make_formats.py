"""Write the small COCO, YOLO, Pascal VOC, LabelMe and CVAT examples beside this script.

``python examples/make_formats.py`` (re)creates ``examples/coco/``, ``examples/yolo/``,
``examples/voc/``, ``examples/labelme/`` and ``examples/cvat/``: the same four tiny images
and the same boxes in each format, with a polygon or two and a class name with a space.
No network, no imaging library.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
W, H = 64, 48
CLASSES = ["cat", "dog", "Traffic Light"]
# image name, colour, [(class index, x0, y0, x1, y1) in pixels, half-open]
IMAGES = [
    ("street-1.png", (90, 90, 100), [(2, 40, 4, 52, 30), (1, 6, 20, 30, 44)]),
    ("street-2.png", (120, 110, 90), [(2, 8, 2, 18, 26)]),
    ("pets-1.png", (200, 170, 140), [(0, 4, 8, 28, 40), (1, 30, 10, 60, 46)]),
    ("empty-1.png", (30, 60, 30), []),
]
# a polygon (pixels) for the first box of pets-1: a cat's outline, roughly
POLYGON = [4.0, 40.0, 8.0, 8.0, 16.0, 14.0, 28.0, 8.0, 26.0, 40.0]


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(row * height, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def write_coco(root: Path) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, (name, colour, boxes) in enumerate(IMAGES, start=1):
        (root / "images" / name).write_bytes(png(W, H, colour))
        images.append({"id": i, "file_name": name, "width": W, "height": H, "license": 1})
        for cls, x0, y0, x1, y1 in boxes:
            ann: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": i,
                "category_id": cls + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
                "segmentation": [],
            }
            if name == "pets-1.png" and cls == 0:
                ann["segmentation"] = [POLYGON]
            annotations.append(ann)
    annotations.sort(key=lambda a: int(a["category_id"]))  # COCO files come by category
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    data = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations.json").write_text(json.dumps(data, indent=1) + "\n")


def write_yolo(root: Path) -> None:
    for split, picks in (("train", IMAGES[:3]), ("val", IMAGES[3:])):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for name, colour, boxes in picks:
            (root / "images" / split / name).write_bytes(png(W, H, colour))
            lines = []
            for cls, x0, y0, x1, y1 in boxes:
                if name == "pets-1.png" and cls == 0:
                    pts = " ".join(
                        f"{v / (W if i % 2 == 0 else H):.6f}" for i, v in enumerate(POLYGON)
                    )
                    lines.append(f"{cls} {pts}")
                    continue
                cx, cy = (x0 + x1) / 2 / W, (y0 + y1) / 2 / H
                lines.append(f"{cls} {cx:.6f} {cy:.6f} {(x1 - x0) / W:.6f} {(y1 - y0) / H:.6f}")
            if lines:
                (root / "labels" / split / (Path(name).stem + ".txt")).write_text(
                    "\n".join(lines) + "\n"
                )
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    (root / "data.yaml").write_text(
        f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}\n"
    )


def write_voc(root: Path) -> None:
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for name, colour, boxes in IMAGES:
        (root / "JPEGImages" / name).write_bytes(png(W, H, colour))
        objects = "".join(
            f"  <object>\n    <name>{CLASSES[cls]}</name>\n    <pose>Unspecified</pose>\n"
            f"    <truncated>0</truncated>\n    <difficult>{int(cls == 2)}</difficult>\n"
            f"    <bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1}</xmax>"
            f"<ymax>{y1}</ymax></bndbox>\n  </object>\n"
            for cls, x0, y0, x1, y1 in boxes
        )
        (root / "Annotations" / (Path(name).stem + ".xml")).write_text(
            f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{name}</filename>\n"
            f"  <size><width>{W}</width><height>{H}</height><depth>3</depth></size>\n"
            f"{objects}</annotation>\n"
        )


def write_labelme(root: Path) -> None:
    """One JSON file beside each image, as LabelMe saves them (no embedded image)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, colour, boxes in IMAGES:
        (root / name).write_bytes(png(W, H, colour))
        shapes = []
        for cls, x0, y0, x1, y1 in boxes:
            polygon = name == "pets-1.png" and cls == 0
            points = [POLYGON[i : i + 2] for i in range(0, len(POLYGON), 2)]
            shapes.append(
                {
                    "label": CLASSES[cls],
                    "points": points if polygon else [[x0, y0], [x1, y1]],
                    "group_id": None,
                    "description": "",
                    "shape_type": "polygon" if polygon else "rectangle",
                    "flags": {},
                    "mask": None,
                }
            )
        doc = {
            "version": "5.7.0",
            "flags": {},
            "shapes": shapes,
            "imagePath": name,
            "imageData": None,
            "imageHeight": H,
            "imageWidth": W,
        }
        (root / (Path(name).stem + ".json")).write_text(json.dumps(doc, indent=2) + "\n")


def write_cvat(root: Path) -> None:
    """``annotations.xml`` and ``images/``, as CVAT exports a task "for images 1.1"."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    labels = "".join(
        f"        <label>\n          <name>{n}</name>\n          <type>any</type>\n"
        "          <attributes>\n          </attributes>\n        </label>\n"
        for n in CLASSES
    )
    images = []
    for i, (name, colour, boxes) in enumerate(IMAGES):
        (root / "images" / name).write_bytes(png(W, H, colour))
        shapes = []
        for cls, x0, y0, x1, y1 in boxes:
            common = f'label="{CLASSES[cls]}" source="manual" occluded="0"'
            if name == "pets-1.png" and cls == 0:
                points = ";".join(
                    f"{POLYGON[j]:.2f},{POLYGON[j + 1]:.2f}" for j in range(0, len(POLYGON), 2)
                )
                shapes.append(
                    f'    <polygon {common} points="{points}" z_order="0">\n    </polygon>'
                )
            else:
                shapes.append(
                    f'    <box {common} xtl="{x0:.2f}" ytl="{y0:.2f}" xbr="{x1:.2f}" '
                    f'ybr="{y1:.2f}" z_order="0">\n    </box>'
                )
        body = "".join(s + "\n" for s in shapes)
        images.append(
            f'  <image id="{i}" name="{name}" width="{W}" height="{H}">\n{body}  </image>\n'
        )
    (root / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
        "  <meta>\n    <task>\n      <name>examples</name>\n      <size>4</size>\n"
        "      <mode>annotation</mode>\n      <labels>\n"
        f"{labels}      </labels>\n    </task>\n  </meta>\n{''.join(images)}</annotations>\n"
    )


if __name__ == "__main__":
    write_coco(HERE / "coco")
    write_yolo(HERE / "yolo")
    write_voc(HERE / "voc")
    write_labelme(HERE / "labelme")
    write_cvat(HERE / "cvat")
    print(f"wrote coco/, yolo/, voc/, labelme/ and cvat/ in {HERE}")
