"""Replay semantics (escalation, every attempt costs) and bootstrap statistics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tradeoff.evals.summary import wilson
from tradeoff.policies.data import Outcomes
from tradeoff.policies.replay.metrics import Bootstrap, constraint_margin, metric_samples, summarize
from tradeoff.policies.replay.simulate import Routes, replay, single_routes
from tradeoff.policies.requirement import Constraint


def outcomes(score: np.ndarray, cost: np.ndarray, latency: np.ndarray | None = None) -> Outcomes:
    """Arrays (n, m, s) -> Outcomes with made-up ids."""
    n = score.shape[0]
    return Outcomes(
        dataset="t",
        item_ids=np.array([f"i{i}" for i in range(n)], dtype=object),
        tasks=np.array(["t"] * n, dtype=object),
        prompts=np.array(["p"] * n, dtype=object),
        splits=np.array([""] * n, dtype=object),
        models=tuple(f"m{j}" for j in range(score.shape[1])),
        score=score.astype(float),
        cost=cost.astype(float),
        latency=np.full(score.shape, np.nan) if latency is None else latency,
        error=np.zeros(score.shape, dtype=bool),
    )


def test_cascade_escalates_only_when_the_verifier_rejects_and_pays_every_attempt() -> None:
    # 3 items x 2 models x 1 sample. Verifier accepts m0 on items 0, 1; rejects on item 2.
    score = np.array([[[1.0], [1.0]], [[0.0], [1.0]], [[0.0], [1.0]]])
    cost = np.array([[[1.0], [10.0]]] * 3)
    latency = np.array([[[100.0], [500.0]]] * 3)
    out = outcomes(score, cost, latency)
    accept = np.array([[[True], [True]], [[True], [True]], [[False], [True]]])
    routes = Routes(np.tile([0, 1], (3, 1)), np.ones(3, dtype=int), "v")
    r = replay(out, routes, lambda name, k: accept)
    assert r.score.tolist() == [1.0, 0.0, 1.0]  # item 1: verifier wrongly accepted a wrong answer
    assert r.cost.tolist() == [1.0, 1.0, 11.0]
    assert r.latency.tolist() == [100.0, 100.0, 600.0]
    assert r.final.tolist() == [0, 0, 1]


def test_errors_fall_back_to_the_next_model_without_a_verifier() -> None:
    score = np.array([[[0.0], [1.0]], [[1.0], [1.0]]])
    out = outcomes(score, np.ones_like(score))
    error = out.error.copy()
    error[0, 0, 0] = True
    out = Outcomes(**{**out.__dict__, "error": error})
    r = replay(out, Routes(np.tile([0, 1], (2, 1)), np.ones(2, dtype=int)))
    assert r.final.tolist() == [1, 0] and r.score.tolist() == [1.0, 1.0]
    assert r.cost.tolist() == [2.0, 1.0] and not r.error.any()


def test_best_of_k_keeps_the_first_accepted_sample_and_pays_k() -> None:
    # 1 item, 2 models, 3 samples; samples of m0: wrong, right, right; verifier accepts 2nd.
    score = np.array([[[0.0, 1.0, 1.0], [1.0, np.nan, np.nan]]])
    cost = np.array([[[1.0, 1.0, 1.0], [10.0, np.nan, np.nan]]])
    out = outcomes(score, cost)
    accept = np.array([[[False, True, True], [True, False, False]]])
    r = replay(out, Routes(np.array([[0, 1]]), np.array([3]), "v"), lambda name, k: accept)
    assert r.score.tolist() == [1.0] and r.cost.tolist() == [3.0] and r.final.tolist() == [0]
    none = np.zeros_like(accept)
    r = replay(out, Routes(np.array([[0, 1]]), np.array([2]), "v"), lambda name, k: none)
    assert r.final.tolist() == [1] and r.cost.tolist() == [12.0]  # 2 samples + the escalation


def test_asking_for_more_samples_than_recorded_is_an_error() -> None:
    out = outcomes(np.ones((2, 1, 1)), np.ones((2, 1, 1)))
    with pytest.raises(Exception, match="samples"):
        replay(
            out,
            Routes(np.zeros((2, 1), dtype=int), np.full(2, 3), "v"),
            lambda n, k: np.ones((2, 1, 1), bool),
        )


def test_bootstrap_interval_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    trials = 200
    for t in range(trials):
        score = (rng.random((150, 1, 1)) < 0.7).astype(float)
        out = outcomes(score, np.ones_like(score))
        r = replay(out, single_routes(150, 0))
        lo, hi = summarize(r, r, Bootstrap.draw(150, t, resamples=300), out.models)["accuracy_ci"]
        hits += lo <= 0.7 <= hi
    assert 0.89 <= hits / trials <= 0.99


def test_paired_lower_bound_is_below_the_point_margin_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(2)

    def margin(n: int) -> tuple[float, float]:
        base = (rng.random(n) < 0.8).astype(float)
        mine = np.where(rng.random(n) < 0.9, base, 0.0)  # keeps ~90% of the baseline's wins
        out = outcomes(np.stack([mine, base], axis=1)[:, :, None], np.ones((n, 2, 1)))
        r, b = replay(out, single_routes(n, 0)), replay(out, single_routes(n, 1))
        c = Constraint("accuracy", ">=", 0.85, relative=True)
        return constraint_margin(c, r, b, None), constraint_margin(c, r, b, Bootstrap.draw(n, 0))

    point_small, lower_small = margin(100)
    point_big, lower_big = margin(20000)
    assert lower_small < point_small and lower_big < point_big
    assert point_big - lower_big < point_small - lower_small
    assert lower_big > 0  # 90% kept clears 85% of baseline once n is large


def test_summary_reports_savings_and_model_shares() -> None:
    score = np.array([[[1.0], [1.0]]] * 4)
    cost = np.array([[[1.0], [4.0]]] * 4)
    out = outcomes(score, cost)
    routes = Routes(np.array([[0], [0], [0], [1]]), np.ones(4, dtype=int))
    r, base = replay(out, routes), replay(out, single_routes(4, 1))
    doc = summarize(r, base, Bootstrap.draw(4, 0), out.models)
    assert doc["cost_per_request_usd"] == pytest.approx(7 / 4)
    assert doc["savings_vs_baseline"] == pytest.approx(1 - 7 / 16)
    assert doc["models_used"] == {"m0": 0.75, "m1": 0.25}
    assert doc["reliability"] == 1.0 and doc["p95_latency_ms"] is None


def test_small_sample_accuracy_intervals_are_never_zero_width() -> None:
    """19 held-out items, every one right: the bootstrap's interval is "1.000-1.000"; the score
    interval says what 19 items can show."""
    out = outcomes(np.ones((19, 1, 1)), np.ones((19, 1, 1)))
    r = replay(out, single_routes(19, 0))
    lo, hi = summarize(r, r, Bootstrap.draw(19, 0), out.models)["accuracy_ci"]
    assert hi == 1.0 and lo < 0.9
    assert [lo, hi] == list(wilson(1.0, 19))


def test_small_sample_accuracy_intervals_are_wilsons_and_large_ones_the_bootstraps() -> None:
    rng = np.random.default_rng(3)
    for n in (40, 400):
        out = outcomes((rng.random((n, 1, 1)) < 0.75).astype(float), np.ones((n, 1, 1)))
        r = replay(out, single_routes(n, 0))
        boot = Bootstrap.draw(n, 0)
        got = summarize(r, r, boot, out.models)["accuracy_ci"]
        if n < 100:
            assert got == list(wilson(float(r.score.mean()), n))
        else:
            assert got == list(np.quantile(boot.means(r.score), [0.025, 0.975]))


@pytest.mark.parametrize("n", [1, 2, 7, 150, 3000])
def test_resampled_p95_latency_is_numpys_nanquantile_of_the_resamples(n: int) -> None:
    """`Bootstrap.quantiles` counts draws instead of sorting each resample: the same numbers,
    to the last bit, with ties and unrecorded (NaN) latencies."""
    rng = np.random.default_rng(n)
    latency = np.round(rng.lognormal(6, 1, size=n), -1)  # rounded: many ties
    latency[rng.random(n) < 0.2] = np.nan
    if np.isnan(latency).all():
        latency[0] = 250.0
    out = outcomes(np.ones((n, 1, 1)), np.ones((n, 1, 1)), latency.reshape(n, 1, 1))
    r = replay(out, single_routes(n, 0))
    boot = Bootstrap.draw(n, 4)
    with warnings.catch_warnings():  # a resample of NaNs only: numpy warns, both say NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanquantile(r.latency[boot.indices], 0.95, axis=1)
        wants = {q: np.nanquantile(latency[boot.indices], q, axis=1) for q in (0.0, 0.5, 1.0)}
    assert np.array_equal(metric_samples("p95_latency", r, boot), want, equal_nan=True)
    for q, want in wants.items():
        assert np.array_equal(boot.quantiles(latency, q), want, equal_nan=True)


def test_kept_accuracy_and_savings_intervals_are_never_zero_width() -> None:
    """19 items, both right on each, the policy at half the baseline's cost: the bootstrap's
    intervals were "100.0-100.0%" and "50-50%"."""
    score = np.ones((19, 2, 1))
    cost = np.stack([np.full(19, 1.0), np.full(19, 2.0)], axis=1)[:, :, None]
    out = outcomes(score, cost)
    r, base = replay(out, single_routes(19, 0)), replay(out, single_routes(19, 1))
    doc = summarize(r, base, Bootstrap.draw(19, 0), out.models)
    lo, hi = doc["accuracy_vs_baseline_ci"]
    assert lo < 0.96 and hi > 1.04 and lo <= doc["accuracy_vs_baseline"] <= hi
    lo, hi = doc["savings_ci"]
    assert lo < 0.48 and hi > 0.52 and lo <= doc["savings_vs_baseline"] <= hi


def test_kept_accuracy_intervals_of_large_samples_are_the_bootstraps() -> None:
    rng = np.random.default_rng(4)
    n = 400
    score = (rng.random((n, 2, 1)) < 0.8).astype(float)
    out = outcomes(score, np.ones((n, 2, 1)))
    r, base = replay(out, single_routes(n, 0)), replay(out, single_routes(n, 1))
    boot = Bootstrap.draw(n, 0)
    got = summarize(r, base, boot, out.models)["accuracy_vs_baseline_ci"]
    want = np.quantile(boot.means(r.score) / boot.means(base.score), [0.025, 0.975])
    assert got == pytest.approx(list(want))
