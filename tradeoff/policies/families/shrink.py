"""Empirical-Bayes shrinkage of per-group means toward the overall mean.

A task seen five times should not flip a routing decision on noise. Each group's mean is pulled
toward the overall mean with a prior worth `k` pseudo-items, `k` estimated from the data by the
method of moments (within-group variance over between-group variance): groups that truly differ
keep their own means, groups that differ only by noise collapse toward the overall one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BETWEEN = 1e-6  # floor on the between-group variance (k stays finite)


@dataclass(frozen=True)
class GroupMeans:
    """Shrunk means per group and column, and the overall mean per column."""

    table: np.ndarray  # (G, m)
    overall: np.ndarray  # (m,)
    counts: np.ndarray  # (G,)
    prior: np.ndarray  # (m,) pseudo-items of the prior per column


def shrunk_means(
    groups: np.ndarray, y: np.ndarray, n_groups: int, strength: float = 1.0
) -> GroupMeans:
    """Per-group means of `y` (n, m) shrunk toward the column means; `groups` (n,) in [0, G).
    `strength` scales the estimated prior (the configuration search may tune it)."""
    y = np.asarray(y, dtype=float)
    m = y.shape[1]
    counts = np.bincount(groups, minlength=n_groups).astype(float)
    sums = np.zeros((n_groups, m))
    np.add.at(sums, groups, y)
    overall = y.mean(axis=0) if len(y) else np.zeros(m)
    seen = counts > 0
    means = np.where(seen[:, None], sums / np.maximum(counts, 1)[:, None], overall[None, :])
    resid = y - means[groups]
    dof = max(len(y) - int(seen.sum()), 1)
    within = (resid**2).sum(axis=0) / dof  # (m,) pooled within-group variance
    if seen.sum() > 1:
        spread = means[seen].var(axis=0, ddof=1)
        noise = (within[None, :] / counts[seen][:, None]).mean(axis=0)
        between = np.maximum(spread - noise, MIN_BETWEEN)
    else:
        between = np.full(m, MIN_BETWEEN)
    prior = np.maximum(within / between, 1e-9) * strength
    table = (sums + prior[None, :] * overall[None, :]) / (counts[:, None] + prior[None, :])
    return GroupMeans(table, overall, counts, prior)


def group_index(values: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Index of each value in `names`; -1 for values not among them."""
    pos = {name: i for i, name in enumerate(names)}
    return np.array([pos.get(str(v), -1) for v in values], dtype=int)
