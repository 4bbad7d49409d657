"""Per-request cost prediction and empirical-Bayes shrinkage."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.policies.families.costs import CostModel, fit_cost_model
from tradeoff.policies.families.shrink import shrunk_means


def test_cost_model_recovers_the_price_of_length_and_the_output_per_task() -> None:
    rng = np.random.default_rng(0)
    n = 600
    tasks = np.array(["short", "long"] * (n // 2), dtype=object)
    prompts = ["x" * int(rng.integers(10, 4000)) for _ in range(n)]
    per_char = np.array([1e-8, 1e-6])
    output = {"short": np.array([1e-5, 1e-4]), "long": np.array([5e-5, 9e-4])}
    cost = np.array([len(p) * per_char + output[t] for p, t in zip(prompts, tasks, strict=True)])
    cost *= rng.lognormal(0, 0.05, size=cost.shape)
    model = fit_cost_model(prompts, list(tasks), cost, ["a", "b"])
    assert model.per_char == pytest.approx(per_char, rel=0.1)
    got = model.one("x" * 1000, "long")
    assert got == pytest.approx(1000 * per_char + output["long"], rel=0.1)
    assert model.predict(["x" * 1000], ["long"])[0] == pytest.approx(got)
    unknown = model.one("x" * 1000, "never seen")  # the models' overall rest
    assert np.all(unknown > 1000 * per_char)
    again = CostModel.from_params(["a", "b"], model.to_params())
    assert np.allclose(
        again.predict(prompts[:5], list(tasks[:5])), model.predict(prompts[:5], list(tasks[:5]))
    )


def test_per_model_costs_ignore_length() -> None:
    cost = np.array([[1.0, 3.0], [3.0, 5.0]])
    model = fit_cost_model(["a", "aaaa"], ["t", "t"], cost, ["x", "y"], per_request=False)
    assert model.one("a" * 10_000, "t") == pytest.approx([2.0, 4.0])


def test_shrinkage_pulls_noisy_small_groups_toward_the_overall_mean() -> None:
    rng = np.random.default_rng(1)
    groups = np.r_[np.zeros(500, int), np.ones(500, int), np.full(4, 2)]
    truth = np.array([0.2, 0.8, 0.5])
    y = (rng.random(len(groups)) < truth[groups]).astype(float)[:, None]
    means = shrunk_means(groups, y, 3)
    assert means.table[0, 0] == pytest.approx(0.2, abs=0.05)  # big groups keep their means
    assert means.table[1, 0] == pytest.approx(0.8, abs=0.05)
    raw = y[groups == 2].mean()
    assert abs(means.table[2, 0] - y.mean()) < abs(raw - y.mean()) or raw == y.mean()
    same = shrunk_means(np.r_[np.zeros(50, int), np.ones(50, int)], rng.random((100, 1)) < 0.5, 2)
    assert abs(same.table[0, 0] - same.table[1, 0]) < 0.1  # groups that differ by noise only
