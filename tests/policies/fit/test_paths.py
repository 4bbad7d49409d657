"""The gain-per-dollar rule's path: every distinct routing, traced exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.policies.fit.paths import breakpoints, choose, inside, lam_grid, trace


@pytest.mark.parametrize("seed", range(5))
def test_trace_matches_the_rule_at_every_routing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = 60, 4
    pred = rng.random((n, m))
    cost = rng.random((n, m)) * np.arange(1, m + 1)  # per-request costs, dearer models cost more
    score, true_cost = rng.random((n, m)), rng.random((n, m))
    unit = cost.mean(axis=0).max()
    points = breakpoints(pred, cost, unit)
    path = trace(points, score, true_cost)
    rows = np.arange(n)
    # Between consecutive breakpoints the rule's routing is the traced one.
    for k in range(len(path.score)):
        picks = choose(pred, cost, inside(path.lam_hi[k], path.lam_lo[k]), unit)
        assert score[rows, picks].mean() == pytest.approx(path.score[k])
        assert true_cost[rows, picks].mean() == pytest.approx(path.cost[k])
    # Every lam of the grid names one of those routings, and a large enough grid names all.
    grid = lam_grid(points, 10_000)
    assert len(grid) == len(path.score)
    costs = sorted(true_cost[rows, choose(pred, cost, lam, unit)].mean() for lam in grid)
    assert np.allclose(costs, sorted(path.cost))


def test_ends_of_the_path() -> None:
    pred = np.array([[0.2, 0.9], [0.5, 0.6]])
    cost = np.array([[1.0, 10.0], [1.0, 2.0]])
    points = breakpoints(pred, cost, 10.0)
    assert list(points.start) == [0, 0]  # lam -> infinity: the cheapest model
    assert list(choose(pred, cost, 0.0, 10.0)) == [1, 1]  # lam = 0: the best predicted
    # item 1 gains 0.1 for 1 extra (scaled 0.1): it switches before item 0 (0.7 for 0.9)
    assert list(points.item) == [1, 0] and points.lam[0] == pytest.approx(1.0)
