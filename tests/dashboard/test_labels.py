"""Labels never collide: with each other, with the points, with the plot's edges."""

from __future__ import annotations

import random

from tradeoff.dashboard.labels import Point, Scale, place


def _boxes(points: list[Point], sides: dict[str, str]) -> list:
    return [p.label_box(sides[p.text]) for p in points if p.text in sides]


def test_crowded_points_keep_only_labels_that_fit() -> None:
    rng = random.Random(7)
    points = [Point(f"model-{k:02d}", rng.uniform(0, 300), rng.uniform(0, 200)) for k in range(40)]
    sides = place(points, 300, 200)
    boxes = _boxes(points, sides)
    assert 0 < len(sides) < len(points)  # some fit, the crowd does not
    for i, a in enumerate(boxes):
        assert a.left >= 0 and a.right <= 300 and a.top >= 0 and a.bottom <= 200
        assert not any(a.hits(b) for b in boxes[i + 1 :])
        assert not any(a.hits(p.box()) for p in points)


def test_earlier_points_win_and_labels_move_before_they_go() -> None:
    first = Point("aaaaaaaaaa", 100, 100)
    later = Point("cc", 90, 112)  # its right side runs into the first label
    assert place([first, later], 600, 400) == {"aaaaaaaaaa": "right", "cc": "left"}
    # A bigger point (the recommendation's ring) pushes its own label further out.
    ring = Point("recommended", 100, 100, radius=13)
    plain = Point("recommended", 100, 100)
    assert ring.label_box("right").left > plain.label_box("right").left > plain.box().right
    edge = Point("at-the-right-edge", 590, 100)
    assert place([edge], 600, 400)["at-the-right-edge"] == "left"


def test_scales_map_data_to_pixels() -> None:
    assert Scale(0, 10, 100)(5) == 50
    assert Scale(0.01, 1, 200, log=True)(0.1) == 100
