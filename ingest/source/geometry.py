"""Pixel and normalised geometry of the format readers: boxes and polygons into [0, 1].

Each function returns the normalised shape, or why it is refused in words a user can
act on (the readers put the words into an invalid row, with the file and position).
One pixel of overshoot is clamped: exporters round a box's edge onto the pixel past the
image's last one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["pixel_box", "polygon_bounds", "unit_box", "unit_polygon"]


def pixel_box(
    x0: float, y0: float, x1: float, y1: float, width: float, height: float
) -> tuple[float, float, float, float] | str:
    """A pixel box normalised to [0, 1], or why it is invalid.

    An overshoot of at most one pixel is clamped; anything further outside, or no area,
    is refused.
    """
    if x0 < -1 or y0 < -1 or x1 > width + 1 or y1 > height + 1:
        values = (x0, y0, x1, y1)
        return f"the box {_nums(values)} lies outside the {_num(width)}x{_num(height)} image"
    if not (-1 <= x0 <= x1 and -1 <= y0 <= y1):  # NaN, or no area
        values = (x0, y0, x1, y1)
        if not all(math.isfinite(v) for v in values):
            return f"the box {_nums(values)} is not made of finite numbers"
        return f"the box {_nums(values)} has no area"
    left, top = max(x0, 0.0), max(y0, 0.0)
    right, bottom = min(x1, float(width)), min(y1, float(height))
    if right <= left or bottom <= top:
        return f"the box {_nums((x0, y0, x1, y1))} has no area"
    return (left / width, top / height, right / width, bottom / height)


def unit_box(
    box: tuple[float, float, float, float], size: tuple[int, int] | None
) -> tuple[float, float, float, float] | str:
    """A normalised box checked like :func:`pixel_box`, one pixel being ``1 / size``.

    Without the image's size only rounding (1e-9) is tolerated beyond [0, 1].
    """
    left, top, right, bottom = box
    if not all(math.isfinite(v) for v in box):
        return f"the box {_nums(box)} is not made of finite numbers"
    tx, ty = (1 / size[0], 1 / size[1]) if size and size[0] and size[1] else (1e-9, 1e-9)
    if left < -tx or top < -ty or right > 1 + tx or bottom > 1 + ty:
        by = " by more than one pixel" if size else ""
        return f"the box {_nums(box)} lies outside the image (normalised [0, 1]){by}"
    left, top = max(left, 0.0), max(top, 0.0)
    right, bottom = min(right, 1.0), min(bottom, 1.0)
    if right <= left or bottom <= top:
        return f"the box {_nums(box)} has no area"
    return (left, top, right, bottom)


def unit_polygon(points: Sequence[float], width: float, height: float) -> tuple[float, ...] | str:
    """Flat pixel ``x, y`` points normalised (one pixel of overshoot clamped), or why not."""
    if len(points) % 2 or len(points) < 6:
        return f"the polygon has {len(points)} numbers; 3 or more x, y pairs are needed"
    out: list[float] = []
    for i, v in enumerate(points):
        limit = width if i % 2 == 0 else height
        if not math.isfinite(v) or v < -1 or v > limit + 1:
            what = "x" if i % 2 == 0 else "y"
            return (
                f"point {i // 2 + 1} of the polygon has {what} = {_num(v)}, outside the "
                f"{_num(width)}x{_num(height)} image"
            )
        out.append(min(max(v, 0.0), float(limit)) / limit)
    return tuple(out)


def polygon_bounds(points: Sequence[float]) -> tuple[float, float, float, float]:
    """The box around flat ``x, y`` points: (left, top, right, bottom)."""
    xs, ys = points[0::2], points[1::2]
    return (min(xs), min(ys), max(xs), max(ys))


def _num(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _nums(values: Iterable[float]) -> str:
    return "(" + ", ".join(_num(v) for v in values) + ")"
