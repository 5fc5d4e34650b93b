"""The shapes of the annotation tools (LabelMe, CVAT) as rows: what the two readers share.

A tool's shape is either a **box** (a rectangle along the image's axes: it stays a box
whatever ``--regions``) or an **outline** (a polygon, and what becomes one: a rotated
rectangle, a circle or an ellipse), which follows ``--regions`` like a COCO segmentation:
its bounding box, its polygon, or both. Every shape has two row positions, its box's and
its polygon's, used or not, so that a row's position does not depend on ``--regions``
nor on whether ingest stores the shape's kind at all.

Pixel coordinates are continuous (the image spans 0 to its width), as both tools write
them; a box or a polygon overshooting the image by at most one pixel is clamped, anything
further out is an invalid row naming the file and the shape (:mod:`.geometry`). A circle
or an ellipse becomes the polygon LabelMe's own ``labelme2coco`` makes of a circle (its
vertices no more than a pixel from the curve, at least 12), cut at the image's edge.

What ingest cannot store (lines, points, masks, skeletons...) is said as a warning when
the dataset is opened (:class:`Skipped`), so ``--strict`` refuses before anything is sent.
An image file named by two annotation entries (two LabelMe files, two CVAT ``<image>``
elements) is found by :class:`Repeats`: the rows of the second are invalid, since the rows
of one input come together.
"""

from __future__ import annotations

import hashlib
import math
import os
from array import array
from collections.abc import Callable, Collection, Sequence
from itertools import pairwise

from ingest.errors import SourceError

from .base import SourceStats
from .cells import MAX_POLYGON_POINTS
from .columns import near_miss
from .dataset import Item
from .formats import FormatOptions
from .geometry import pixel_box, polygon_bounds, unit_polygon

__all__ = [
    "NAMED",
    "Repeats",
    "ShapeRows",
    "Skipped",
    "Unknown",
    "clip_to_image",
    "ellipse_bounds",
    "ellipse_points",
    "rotated_box_points",
]

NAMED = 20
"""Shapes named one by one in the warnings of a read; the others are counted."""


def ellipse_points(
    cx: float, cy: float, rx: float, ry: float, rotation: float = 0.0
) -> list[float]:
    """Flat ``x, y`` pixel points of an ellipse (``rotation`` in degrees, clockwise on
    the image), each edge within one pixel of the curve, at least 12 vertices."""
    radius = max(abs(rx), abs(ry))
    n = 12 if radius <= 1.0 else max(12, math.ceil(math.pi / math.acos(1.0 - 1.0 / radius)))
    n = min(n, MAX_POLYGON_POINTS)
    cos_r, sin_r = _turn(rotation)
    out: list[float] = []
    for i in range(n):
        a = 2.0 * math.pi * i / n
        dx, dy = rx * math.cos(a), ry * math.sin(a)
        out += [cx + dx * cos_r - dy * sin_r, cy + dx * sin_r + dy * cos_r]
    return out


def ellipse_bounds(
    cx: float, cy: float, rx: float, ry: float, rotation: float = 0.0
) -> tuple[float, float, float, float]:
    """The box around an ellipse (not around its polygon, whose vertices may miss the
    curve's extremes by up to a pixel): left, top, right, bottom."""
    cos_r, sin_r = _turn(rotation)
    half_w = math.hypot(rx * cos_r, ry * sin_r)
    half_h = math.hypot(rx * sin_r, ry * cos_r)
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def rotated_box_points(x0: float, y0: float, x1: float, y1: float, rotation: float) -> list[float]:
    """The corners of a box turned ``rotation`` degrees clockwise about its centre."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    cos_r, sin_r = _turn(rotation)
    out: list[float] = []
    for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        dx, dy = x - cx, y - cy
        out += [cx + dx * cos_r - dy * sin_r, cy + dx * sin_r + dy * cos_r]
    return out


def _turn(degrees: float) -> tuple[float, float]:
    r = math.radians(degrees)
    return math.cos(r), math.sin(r)


def clip_to_image(points: Sequence[float], width: float, height: float) -> list[float]:
    """The part of a convex polygon inside the image (Sutherland-Hodgman), flat points."""
    poly = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]
    # each side of the image: the axis, the bound, and whether the inside is above it
    for axis, bound, above in (
        (0, 0.0, True),
        (0, width, False),
        (1, 0.0, True),
        (1, height, False),
    ):
        out: list[tuple[float, float]] = []
        for i, cur in enumerate(poly):
            prev = poly[i - 1]
            cur_in = (cur[axis] >= bound) == above or cur[axis] == bound
            prev_in = (prev[axis] >= bound) == above or prev[axis] == bound
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
        poly = out
        if not poly:
            break
    return [v for p in poly for v in p]


def _area2(points: Sequence[float]) -> float:
    """Twice the signed area of flat ``x, y`` points (the shoelace formula)."""
    xs, ys = points[0::2], points[1::2]
    n = len(xs)
    return sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))


class ShapeRows:
    """The rows of one image's shapes: ``make`` builds an image's cells (with its image,
    metadata and dataset already given), ``options`` say which regions."""

    def __init__(self, options: FormatOptions, make: Callable[..., list[str]]) -> None:
        self.options = options
        self.make = make

    def invalid(self, line: int, column: str, why: str, concept: str, info: str) -> Item:
        """A row that is not sent, with its reason."""
        return (line, self.make(concept=concept, info=info), column, why)

    def box(
        self,
        line: int,
        where: str,
        corners: tuple[float, float, float, float],
        size: tuple[float, float],
        concept: str,
        info: str,
    ) -> list[Item]:
        """The row of a box (pixel corners), at its box position ``line``."""
        box = pixel_box(*corners, *size)
        if isinstance(box, str):
            return [self.invalid(line, "left_col", f"{where}: {box}", concept, info)]
        return [(line, self.make(box=box, concept=concept, info=info), "", "")]

    def outline(
        self,
        line: int,
        where: str,
        points: Sequence[float],
        size: tuple[float, float],
        concept: str,
        info: str,
        *,
        clip: bool = False,
        bounds: tuple[float, float, float, float] | None = None,
    ) -> list[Item]:
        """The rows of an outline (flat pixel points): its box at ``line`` and its polygon
        at ``line + 1``, as ``--regions`` says. ``clip``: cut at the image's edge first (a
        rotated box, a circle or an ellipse, which ingest turns into a polygon anyway).
        ``bounds``: the shape's own box in pixels (a curve's), else the polygon's."""
        width, height = size
        if clip:
            points = clip_to_image(points, width, height)
        unit = unit_polygon(points, width, height)
        problem = unit if isinstance(unit, str) else _polygon_problem(unit)
        if isinstance(unit, str) or problem:
            what = "after cutting it at the image's edge, " if clip else ""
            why = f"{where}: {what}{problem or unit}"
            return [self.invalid(line, "polygon", why, concept, info)]
        rows: list[Item] = []
        if self.options.boxes:  # a polygon with an area has a box with one
            box = polygon_bounds(unit)
            if bounds is not None:
                x0, y0, x1, y1 = bounds
                box = (
                    max(x0, 0.0) / width,
                    max(y0, 0.0) / height,
                    min(x1, width) / width,
                    min(y1, height) / height,
                )
            rows.append((line, self.make(box=box, concept=concept, info=info), "", ""))
        if self.options.polygons:
            rows.append((line + 1, self.make(polygon=unit, concept=concept, info=info), "", ""))
        return rows


def _polygon_problem(points: Sequence[float]) -> str:
    """What ingest's CSV check would refuse in normalised points ("" when nothing)."""
    count = len(points) // 2
    if count > MAX_POLYGON_POINTS:
        return f"the polygon has {count:,} points; at most {MAX_POLYGON_POINTS:,} are allowed"
    if _area2(points) == 0.0:
        return "the polygon has no area (its points are on one line)"
    return ""


class Skipped:
    """The shapes a read does not upload, said as warnings: the first :data:`NAMED` one by
    one (``where: why``), the others counted by :meth:`finish`."""

    def __init__(self, stats: SourceStats) -> None:
        self.stats = stats
        self.count = 0

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if self.count <= NAMED:
            self.stats.warn(f"{where}: {why}; not uploaded")

    def finish(self) -> None:
        """Say how many were not named."""
        more = self.count - NAMED
        if more > 0:
            self.stats.warn(
                f"{more:,} more shape(s) are not uploaded (the first {NAMED} are named)"
            )


class Repeats:
    """The image files named more than once: :meth:`add` each one's path in the opening
    pass (8 bytes each), :meth:`seal`, then :meth:`again` in the reading pass says whether
    a path was met before (the first time: no). Paths are compared as written, ``..``
    folded (``lm/../images/a.png`` is ``images/a.png``), not resolved: a file named through
    two symbolic links is not seen twice."""

    def __init__(self) -> None:
        self._keys = array("Q")
        self._twice: set[int] = set()
        self._met: set[int] = set()

    @staticmethod
    def _key(path: str) -> int:
        text = os.path.normpath(path).encode(errors="surrogateescape")
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest())

    def add(self, path: str) -> None:
        self._keys.append(self._key(path))

    def seal(self) -> None:
        keys = sorted(self._keys)
        self._twice = {a for a, b in pairwise(keys) if a == b}
        self._keys = array("Q")

    def again(self, path: str) -> bool:
        key = self._key(path)
        if key not in self._twice:
            return False
        if key in self._met:
            return True
        self._met.add(key)
        return False


class Unknown:
    """Names ingest does not read (a JSON key, an XML attribute): a near miss of a name it
    reads that the entry lacks (``imagepath``, ``shape``, ``xbt``) is an error with a "did
    you mean", before anything is sent; any other is said once as a warning, where it was
    first met."""

    def __init__(self, stats: SourceStats) -> None:
        self.stats = stats
        self._met: set[tuple[str, str]] = set()

    def check(self, where: str, what: str, names: Collection[str], known: Collection[str]) -> None:
        """Refuse or warn of each of ``names`` not in ``known`` (``what``: "key",
        "<box> attribute"...)."""
        for name in names:
            if name in known or (what, name) in self._met:
                continue
            meant = near_miss(name, sorted(k for k in known if k not in names))
            if meant is not None:
                raise SourceError(
                    f"{where}: the {what} {name!r} is not one ingest reads; did you mean {meant!r}?"
                )
            self._met.add((what, name))
            self.stats.warn(f"{where}: the {what} {name!r} is not one ingest reads; not uploaded")
