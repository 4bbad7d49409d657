"""Fitting the learned router's predictors, cross-fitted (`policies.fit.crossfit`).

One ridge regression per candidate model (fitted jointly, multi-output) from `PromptFeatures` to
the item's mean recorded score. The ridge penalty is chosen on the first fold (held-out squared
error); every fold is then predicted by the ridge fitted on the others, and the router that is
served averages the fold ridges' coefficients (one linear model, the same decision time), so the
out-of-fold decisions that acceptance tests come from models like the one served.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import Ridge

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.features import PromptFeatures
from tradeoff.policies.families.learned import LearnedPolicy
from tradeoff.policies.fit.crossfit import mean_scores

ALPHAS = (0.3, 1.0, 3.0, 10.0)
MIN_ITEMS = 60  # fewer fitting items than this cannot train a per-prompt predictor


@dataclass(frozen=True)
class LearnedFit:
    policy_template: LearnedPolicy  # the served predictor; rule params are placeholders
    oof: np.ndarray  # (n, m) out-of-fold predictions on the fitting items
    alpha: float


def ridge(x: sp.csr_matrix, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    model = Ridge(alpha=alpha, solver="lsqr", tol=1e-3)  # predictions need no more
    model.fit(x, y)
    return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


def fit_learned(
    outcomes: Outcomes, costs: np.ndarray, folds: np.ndarray, embedding: str | None = None
) -> LearnedFit:
    """Cross-fit on the items of `outcomes`; `costs` (m,) are the models' mean costs;
    `embedding` adds sentence-embedding features (`policies.families.embeddings`)."""
    tasks = sorted({str(t) for t in outcomes.tasks})
    features = PromptFeatures(tasks, embedding=embedding)
    x = features.transform([str(p) for p in outcomes.prompts], [str(t) for t in outcomes.tasks])
    y = mean_scores(outcomes)
    names = np.unique(folds)
    held = folds == names[0]
    train = ~held if (~held).any() else held
    best: tuple[float, float, np.ndarray, np.ndarray, np.ndarray] | None = None
    for alpha in ALPHAS:
        coef, intercept = ridge(x[train], y[train], alpha)
        pred = np.asarray(x[held] @ coef.T) + intercept
        err = float(np.mean((pred - y[held]) ** 2))
        if best is None or err < best[0]:
            best = (err, alpha, pred, coef, intercept)
    assert best is not None
    _, alpha, pred, coef0, intercept0 = best
    oof = np.zeros_like(y)
    oof[held] = pred
    coefs, intercepts = [coef0], [intercept0]
    for f in names[1:]:
        held = folds == f
        coef, intercept = ridge(x[~held], y[~held], alpha)
        oof[held] = np.asarray(x[held] @ coef.T) + intercept
        coefs.append(coef)
        intercepts.append(intercept)
    policy = LearnedPolicy(
        models=list(outcomes.models),
        costs=[float(c) for c in costs],
        coef=np.mean(coefs, axis=0),
        intercept=np.mean(intercepts, axis=0),
        tasks=tasks,
        embedding_model=embedding,
    )
    return LearnedFit(policy, oof, alpha)
