"""Point labels that never collide: each label goes right, left, above or below its point, in
that order of preference, or is left off (the point's tooltip still names it).

Pixel positions come from the chart's own scales at an assumed plot size; the size is a lower
bound of what the page gives the chart, so labels that clear each other there clear each other
on any wider screen too (the x scale stretches, the y scale is fixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Box", "Point", "Scale", "place"]

CHAR_PX = 6.4  # average width of a character of the chart's 11 px label font
LINE_PX = 13
GAP_PX = 7  # between a point's centre and its label
POINT_PX = 6  # a point's radius, kept clear of labels


@dataclass(frozen=True)
class Scale:
    """Data -> pixels along one axis: linear or log, `lo..hi` onto `0..size`."""

    lo: float
    hi: float
    size: float
    log: bool = False

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(value, self.lo))
        return 0.0 if hi == lo else (v - lo) / (hi - lo) * self.size


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def hits(self, other: Box) -> bool:
        return not (
            self.right <= other.left
            or other.right <= self.left
            or self.bottom <= other.top
            or other.bottom <= self.top
        )


@dataclass(frozen=True)
class Point:
    """A point to label: its text, its centre in pixels (y grows downwards), its radius."""

    text: str
    x: float
    y: float
    radius: float = POINT_PX

    def box(self) -> Box:
        r = self.radius
        return Box(self.x - r, self.y - r, self.x + r, self.y + r)

    def label_box(self, side: str) -> Box:
        """Where its label goes on `side`: `GAP_PX` beyond its edge (the chart draws it there:
        `offset`)."""
        width, half, gap = len(self.text) * CHAR_PX, LINE_PX / 2, self.offset()
        x, y = self.x, self.y
        if side == "right":
            return Box(x + gap, y - half, x + gap + width, y + half)
        if side == "left":
            return Box(x - gap - width, y - half, x - gap, y + half)
        if side == "above":
            return Box(x - width / 2, y - gap - LINE_PX, x + width / 2, y - gap)
        return Box(x - width / 2, y + gap, x + width / 2, y + gap + LINE_PX)

    def offset(self) -> float:
        return self.radius + GAP_PX - POINT_PX


SIDES = ("right", "left", "above", "below")


def place(points: list[Point], width: float, height: float) -> dict[str, str]:
    """{label: side} for the labels that fit, given the points in priority order. A label must
    stay inside the plot and clear of every point and of every label placed before it."""
    points_boxes = [p.box() for p in points]
    placed: dict[str, str] = {}
    taken: list[Box] = []
    for k, point in enumerate(points):
        for side in SIDES:
            box = point.label_box(side)
            inside = box.left >= 0 and box.right <= width and box.top >= 0 and box.bottom <= height
            clear = not any(box.hits(b) for b in taken) and not any(
                box.hits(b) for j, b in enumerate(points_boxes) if j != k
            )
            if inside and clear:
                placed[point.text] = side
                taken.append(box)
                break
    return placed
