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
from sklearn.linear_model import LogisticRegression, Ridge

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.features import PromptFeatures
from tradeoff.policies.families.learned import LearnedPolicy
from tradeoff.policies.fit.crossfit import mean_scores

ALPHAS = (0.3, 1.0, 3.0, 10.0)
MIN_ITEMS = 60  # fewer fitting items than this cannot train a per-prompt predictor
CLIP = 1e-3  # a constant model's predicted success stays this far from 0 and 1 (finite logit)


@dataclass(frozen=True)
class LearnedFit:
    policy_template: LearnedPolicy  # the served predictor; rule params are placeholders
    oof: np.ndarray  # (n, m) out-of-fold predictions on the fitting items
    alpha: float


def ridge(x: sp.csr_matrix, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    model = Ridge(alpha=alpha, solver="lsqr", tol=1e-3)  # predictions need no more
    model.fit(x, y)
    return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


def logistic(x: sp.csr_matrix, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One L2-penalised logistic regression per column of `y` (n, m), scores in [0, 1], on the
    logit scale (`LearnedPolicy(link="logistic")`); penalty `alpha` = 1 / C. A fractional score
    counts as a success with that weight and a failure with the rest. A column with one value
    only (a model right on every item, a human reviewer's constant verdicts) is that constant:
    no coefficients, its logit as the intercept."""
    y = np.atleast_2d(np.asarray(y, dtype=float).T).T
    m = y.shape[1]
    coef, intercept = np.zeros((m, x.shape[1])), np.zeros(m)
    for j in range(m):
        col = np.clip(y[:, j], 0.0, 1.0)
        success, failure = float(col.sum()), float((1.0 - col).sum())
        if success <= 0 or failure <= 0:
            p = np.clip(col.mean() if len(col) else 0.5, CLIP, 1 - CLIP)
            intercept[j] = np.log(p / (1 - p))
            continue
        model = LogisticRegression(
            C=1.0 / alpha, max_iter=100, tol=1e-2
        )  # ranks as well, 3x faster
        binary = np.isin(col, (0.0, 1.0)).all()
        if binary:
            model.fit(x, col.astype(int))
        else:  # each item twice: a success weighted by its score, a failure by the rest
            labels = np.concatenate([np.ones(len(col), int), np.zeros(len(col), int)])
            model.fit(
                sp.vstack([x, x]).tocsr(), labels, sample_weight=np.concatenate([col, 1 - col])
            )
        coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
    return coef, intercept


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
