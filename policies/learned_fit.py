"""Fitting the learned router's predictors: ridge per candidate, honest out-of-fold predictions.

The rule's threshold / lambda are tuned by the search on *out-of-fold* predictions of the
fitting items (each item predicted by ridges that never saw it), so the search does not trust
predictions that are optimistic because they were trained on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import Ridge

from policies.data import Outcomes
from policies.features import PromptFeatures
from policies.learned import LearnedPolicy

ALPHAS = (0.3, 1.0, 3.0, 10.0)
FOLDS = 3
MIN_ITEMS = 60  # fewer fitting items than this cannot train a per-prompt predictor


@dataclass(frozen=True)
class LearnedFit:
    policy_template: LearnedPolicy  # rule params are placeholders
    oof: np.ndarray  # (n_fit, m) out-of-fold predictions on the fitting items
    alpha: float


def _ridge(x: sp.csr_matrix, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    model = Ridge(alpha=alpha, solver="lsqr", tol=1e-4)
    model.fit(x, y)
    return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


def fit_learned(outcomes: Outcomes, costs: np.ndarray, seed: int) -> LearnedFit:
    """Fit on every item of `outcomes`; choose alpha by held-out squared error."""
    tasks = sorted({str(t) for t in outcomes.tasks})
    features = PromptFeatures(tasks)
    x = features.transform([str(p) for p in outcomes.prompts], [str(t) for t in outcomes.tasks])
    y = np.clip(outcomes.score[:, :, 0], 0.0, 1.0)
    folds = np.random.default_rng(seed).permutation(len(y)) % FOLDS
    # Alpha is chosen on fold 0 alone (cheap), then the other folds complete the out-of-fold
    # predictions with that alpha: FOLDS + len(ALPHAS) ridge fits instead of their product.
    train, held = folds != 0, folds == 0
    best: tuple[float, float, np.ndarray] | None = None
    for alpha in ALPHAS:
        coef, intercept = _ridge(x[train], y[train], alpha)
        pred = np.asarray(x[held] @ coef.T) + intercept
        err = float(np.mean((pred - y[held]) ** 2))
        if best is None or err < best[0]:
            best = (err, alpha, pred)
    assert best is not None
    _, alpha, pred = best
    oof = np.zeros_like(y)
    oof[held] = pred
    for f in range(1, FOLDS):
        train, held = folds != f, folds == f
        coef, intercept = _ridge(x[train], y[train], alpha)
        oof[held] = np.asarray(x[held] @ coef.T) + intercept
    coef, intercept = _ridge(x, y, alpha)
    policy = LearnedPolicy(
        models=list(outcomes.models),
        costs=[float(c) for c in costs],
        coef=coef,
        intercept=intercept,
        tasks=tasks,
    )
    return LearnedFit(policy, oof, alpha)
