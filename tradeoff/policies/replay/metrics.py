"""Metrics of a replay with bootstrap confidence intervals, and one-sided checks of constraints.

All bootstrap statistics of one item set share one resampling (`Bootstrap`), so a policy and its
baseline are compared *paired*: the same resampled items for both.

Reliability follows DESIGN.md and evals/reliability.py: consistency (mean over items of the
share of the answering model's non-error samples equal to their most frequent score) x (1 -
error rate). For a policy the error rate is the share of requests whose *kept* answer is an
error (fallbacks after an error count in the policy's favour, as they do when serving). On data
without repeats consistency is 1 and reliability reduces to 1 - that error rate.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from tradeoff.evals.summary import wilson
from tradeoff.policies.replay.simulate import Replay
from tradeoff.policies.requirement import Constraint

CONFIDENCE = 0.95
SMALL_SAMPLE = 100  # fewer items than this: accuracy intervals are Wilson's, not the bootstrap's


class Bootstrap:
    """Multinomial resampling of n items, shared by every statistic of one item set.

    `weights[b, i]` is how often item i is drawn in resample b, divided by n, so resampled
    means are one matrix-vector product. Built in chunks so memory stays O(resamples x n)
    floats; quantile statistics (p95 latency) redraw their index arrays only when asked.
    """

    def __init__(self, n: int, seed: int, resamples: int = 400, quantile_resamples: int = 200):
        self.n, self.seed = n, seed
        self.quantile_resamples = quantile_resamples
        rng = np.random.default_rng(seed)
        self.weights = np.empty((resamples, n))
        for start in range(0, resamples, 50):
            rows = min(50, resamples - start)
            idx = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
            counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)
            self.weights[start : start + rows] = counts / n

    @classmethod
    def draw(cls, n: int, seed: int, resamples: int = 400) -> Bootstrap:
        return cls(n, seed, resamples)

    @cached_property
    def indices(self) -> np.ndarray:
        """(quantile_resamples, n) resampled item indices, for statistics that are not means."""
        rng = np.random.default_rng([self.seed, 1])
        return rng.integers(0, self.n, size=(self.quantile_resamples, self.n), dtype=np.int32)

    @cached_property
    def _draws(self) -> np.ndarray:
        """(n, quantile_resamples): how often each item is drawn in each of `indices`' rows."""
        b = self.quantile_resamples
        flat = self.indices.astype(np.int64) * b + np.arange(b)[:, None]
        return np.bincount(flat.ravel(), minlength=self.n * b).reshape(self.n, b).astype(np.int32)

    def means(self, x: np.ndarray) -> np.ndarray:
        """Resampled means of a per-item array (NaN-free)."""
        return self.weights @ x.astype(np.float64)

    def quantiles(self, x: np.ndarray, q: float) -> np.ndarray:
        """Resampled `q` quantiles of a per-item array, NaNs left out: exactly
        `np.nanquantile(x[self.indices], q, axis=1)` (linear interpolation), at a fraction of
        its cost, which a row-by-row loop dominates.

        A resample's sorted values are the items in sorted order, each repeated as often as it
        was drawn, so its k-th smallest value is the item where the cumulative draw count passes
        k. A high quantile needs only the top of that order: the count runs from the largest
        value down over as many items as the deepest resample needs."""
        valid = ~np.isnan(x)
        if not valid.any():
            return np.full(self.quantile_resamples, np.nan)
        draws = self._draws
        total = self.n - draws[~valid].sum(axis=0)
        # numpy's linear method: virtual index (m - 1) q between its floor and the next; at or
        # past the last index, the largest value drawn.
        virtual = (total - 1) * q
        below = np.floor(virtual)
        top = virtual >= total - 1
        # the floor's rank counted down from the largest value drawn
        depth = np.where(top, 0, total - 1 - below).astype(np.int64)
        items = np.flatnonzero(valid)
        deepest = int(depth.max())
        # The top r items are drawn about r times per resample, give or take sqrt(r).
        rows = min(len(items), deepest + 4 * math.isqrt(deepest) + 32)
        while True:
            part = items
            if rows < len(items):  # the `rows` largest values, then sorted
                part = items[np.argpartition(x[items], len(items) - rows)[len(items) - rows :]]
            order = part[np.argsort(x[part])[::-1]]
            seen = np.cumsum(draws[order], axis=0)
            if rows == len(items) or (seen[-1] > depth).all():
                break
            rows = min(len(items), 2 * rows)
        # (the minimum: a resample that drew only NaNs, made NaN below)
        lo = x[order[np.minimum((seen <= depth).sum(axis=0), len(order) - 1)]]
        hi = x[order[(seen <= depth - 1).sum(axis=0)]]
        gamma = virtual - below
        diff = hi - lo
        out = lo + diff * gamma  # numpy's _lerp, to the last bit
        upper = gamma >= 0.5
        out[upper] = (hi - diff * (1 - gamma))[upper]
        out[top] = lo[top]
        out[total == 0] = np.nan
        return out


def ci(samples: np.ndarray) -> list[float]:
    """The two-sided CONFIDENCE interval of bootstrap samples."""
    lo, hi = np.quantile(samples, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return [float(lo), float(hi)]


def accuracy_ci(mean: float, n: int, resampled: np.ndarray) -> list[float]:
    """The CONFIDENCE interval of an accuracy (a mean of item scores in [0, 1] over `n` items):
    the bootstrap's of the `resampled` means, or Wilson's score interval at n items where the
    bootstrap's cannot be trusted: under SMALL_SAMPLE items its percentiles come out too
    narrow, and where every item scores alike it has zero width ("1.000-1.000")."""
    lo, hi = ci(resampled)
    if n >= SMALL_SAMPLE and hi - lo > 1e-12:
        return [lo, hi]
    low, high = wilson(mean, n)
    return [low, high]


def ratio_ci(
    num: np.ndarray, den: np.ndarray, n: int, top: float, minus_from: float | None = None
) -> list[float] | None:
    """The CONFIDENCE interval of mean(num) / mean(den) from their paired resampled means
    (`minus_from - ratio` with `minus_from`, as savings are 1 - cost ratio). Under SMALL_SAMPLE
    items, or where the bootstrap's interval has zero width (every item alike), each end is
    taken with one more, worst-for-that-end item at the per-item range [0, top]: the low end
    over resamples where the numerator also drew 0 and the denominator `top`, the high end the
    other way round. So 19 items on which a policy and its baseline are both right keep "95%
    to 105% of its accuracy", never "100.0-100.0%"; at large n the extra item moves an end by
    about 1/n, and the bootstrap's interval is kept as is."""
    with np.errstate(invalid="ignore", divide="ignore"):
        plain = num / den
        ok = np.isfinite(plain)
        if not ok.any():
            return None
        lo, hi = ci(plain[ok])
        if (n >= SMALL_SAMPLE and hi - lo > 1e-12) or not top > 0:
            return [minus_from - hi, minus_from - lo] if minus_from is not None else [lo, hi]
        low = (n * num) / (n * den + top)
        high = (n * num + top) / (n * den)
    lows, highs = low[np.isfinite(low)], high[np.isfinite(high)]
    if lows.size:
        lo = min(lo, float(np.quantile(lows, (1 - CONFIDENCE) / 2)))
    hi = max(hi, float(np.quantile(highs, (1 + CONFIDENCE) / 2))) if highs.size else np.inf
    return [minus_from - hi, minus_from - lo] if minus_from is not None else [lo, hi]


def reliability_point(r: Replay) -> float:
    cons = r.consistency[~np.isnan(r.consistency)]
    consistency = float(cons.mean()) if cons.size else 1.0
    return consistency * (1.0 - float(r.error.mean()))


def _reliability_boot(r: Replay, boot: Bootstrap) -> np.ndarray:
    has = ~np.isnan(r.consistency)
    err = boot.means(r.error.astype(float))
    if not has.any():
        return 1.0 - err
    mass = boot.means(has.astype(float))
    cons = boot.means(np.nan_to_num(r.consistency)) / np.maximum(mass, 1e-12)
    return cons * (1.0 - err)


def p95(latency: np.ndarray) -> float | None:
    return None if np.isnan(latency).all() else float(np.nanquantile(latency, 0.95))


def metric_samples(metric: str, r: Replay, boot: Bootstrap) -> np.ndarray:
    """Bootstrap distribution of one metric of a replay."""
    if metric == "accuracy":
        return boot.means(r.score)
    if metric == "cost":
        return boot.means(r.cost)
    if metric == "reliability":
        return _reliability_boot(r, boot)
    if metric == "p95_latency":
        return boot.quantiles(r.latency, 0.95)
    if metric == "human_review":
        return boot.means(r.review)
    raise ValueError(metric)


def metric_point(metric: str, r: Replay) -> float:
    if metric == "accuracy":
        return float(r.score.mean())
    if metric == "cost":
        return float(r.cost.mean())
    if metric == "reliability":
        return reliability_point(r)
    if metric == "human_review":
        return float(r.review.mean())
    value = p95(r.latency)
    return float("nan") if value is None else value


def constraint_margin(
    c: Constraint, r: Replay, base: Replay | None, boot: Bootstrap | None
) -> float:
    """How far the constraint holds: the point margin, or with `boot` its one-sided 95% lower
    bound (>= 0 means it holds with confidence). NaN when the metric was not recorded."""
    if boot is None:
        mine = np.array([metric_point(c.metric, r)])
        ref = np.array([metric_point(c.metric, base)]) if c.relative and base else None
    else:
        mine = metric_samples(c.metric, r, boot)
        ref = metric_samples(c.metric, base, boot) if c.relative and base else None
    bound = c.value * ref if ref is not None else c.value
    diff = mine - bound if c.lower_bound else bound - mine
    if np.isnan(diff).all():
        return float("nan")
    return float(diff[0]) if boot is None else float(np.nanquantile(diff, 1 - CONFIDENCE))


def summarize(r: Replay, base: Replay, boot: Bootstrap, models: tuple[str, ...]) -> dict[str, Any]:
    """The JSON metrics of a policy on one item set, against a baseline on the same items."""
    acc_p, cost_b = boot.means(r.score), boot.means(base.cost)
    cost_p = boot.means(r.cost)
    acc_base = boot.means(base.score)
    n = len(r.score)
    top_cost = float(max(r.cost.max(initial=0.0), base.cost.max(initial=0.0)))
    base_cost = float(base.cost.mean())
    base_acc = float(base.score.mean())
    shares = np.bincount(r.final, minlength=len(models)) / max(len(r.final), 1)
    return {
        "n": len(r.score),
        "accuracy": float(r.score.mean()),
        "accuracy_ci": accuracy_ci(float(r.score.mean()), len(r.score), acc_p),
        "cost_per_request_usd": float(r.cost.mean()),
        "cost_ci": ci(cost_p),
        "savings_vs_baseline": (1.0 - float(r.cost.mean()) / base_cost) if base_cost > 0 else None,
        "savings_ci": ratio_ci(cost_p, cost_b, n, top_cost, minus_from=1.0),
        "accuracy_vs_baseline": (float(r.score.mean()) / base_acc) if base_acc > 0 else None,
        "accuracy_vs_baseline_ci": ratio_ci(acc_p, acc_base, n, 1.0),
        "reliability": reliability_point(r),
        "error_rate": float(r.error.mean()),
        "p95_latency_ms": p95(r.latency),
        "models_used": {models[j]: round(float(s), 4) for j, s in enumerate(shares) if s > 0},
        # the share of requests sent to a human reviewer (policies/human.py), Wilson's interval
        "human_review": float(r.review.mean()),
        "human_review_ci": list(wilson(float(r.review.mean()), n)),
    }
