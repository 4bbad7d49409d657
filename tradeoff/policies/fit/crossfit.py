"""Cross-fitting: every training item gets predictions from models that never saw it.

The training items are cut into `FOLDS` folds by a seeded hash of their ids. For each fold the
predictors (per-task scores, per-request costs, the learned router) are fitted on the other
folds and predict the fold's items: these *out-of-fold* predictions drive the candidate
decisions that acceptance tests, so every training item serves as evidence for acceptance and
none is judged by a model fitted on it. The policy that is served is fitted on all training
items (the learned router: the average of its fold models).

`fold_ids`, `mean_scores` and `mean_costs` serve the fit, whose cross-fit also chooses each
family's configuration (`policies.fit.spaces`, `policies.fit.search`); `crossfit_tables` is the
default-configuration cross-fit that `tradeoff frontier` and the benchmarks trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.costs import CostModel, fit_cost_model
from tradeoff.policies.families.shrink import GroupMeans, group_index, shrunk_means
from tradeoff.policies.fit.splits import unit_hash

FOLDS = 5
T = TypeVar("T")


def fold_ids(item_ids: np.ndarray, seed: int, folds: int = FOLDS) -> np.ndarray:
    """Fold per item in [0, folds), from a seeded hash of its id (stable as items are added)."""
    k = min(folds, max(len(item_ids), 1))
    return np.minimum((unit_hash(item_ids, seed, "fold") * k).astype(int), k - 1)


def out_of_fold(
    folds: np.ndarray,
    fit: Callable[[np.ndarray], T],
    predict: Callable[[T, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Predictions for every item from `fit(train_index)` models that left its fold out."""
    out: np.ndarray | None = None
    for f in np.unique(folds):
        held = np.flatnonzero(folds == f)
        rest = np.flatnonzero(folds != f)
        if not len(rest):
            rest = held  # a single fold: nothing to leave out (tiny data)
        pred = predict(fit(rest), held)
        if out is None:
            out = np.zeros((len(folds), *pred.shape[1:]))
        out[held] = pred
    assert out is not None
    return out


def mean_scores(outcomes: Outcomes) -> np.ndarray:
    """(n, m) each item's mean recorded score per model (over its samples), in [0, 1]."""
    return np.clip(np.nanmean(outcomes.score, axis=2), 0.0, 1.0)


def mean_costs(outcomes: Outcomes) -> np.ndarray:
    """(n, m) each item's mean recorded cost per call per model."""
    return np.nanmean(outcomes.cost, axis=2)


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold predictions on the training items and the models to serve."""

    folds: np.ndarray
    cost_oof: np.ndarray  # (n, m) predicted USD per request
    cost_model: CostModel
    task_oof: np.ndarray  # (n, m) shrunk per-task mean scores
    task_means: GroupMeans
    tasks: tuple[str, ...]


def crossfit_tables(outcomes: Outcomes, seed: int, per_request_cost: bool = True) -> CrossFit:
    """Cross-fitted per-request costs and per-task scores of `outcomes` (the training items);
    `per_request_cost=False` predicts each model's mean cost instead (for comparisons)."""
    folds = fold_ids(outcomes.item_ids, seed)
    prompts = [str(p) for p in outcomes.prompts]
    tasks = [str(t) for t in outcomes.tasks]
    costs, scores = mean_costs(outcomes), mean_scores(outcomes)
    models = outcomes.models

    def fit_costs(idx: np.ndarray) -> CostModel:
        return fit_cost_model(
            [prompts[i] for i in idx], [tasks[i] for i in idx], costs[idx], models, per_request_cost
        )

    def predict_costs(model: CostModel, idx: np.ndarray) -> np.ndarray:
        return model.predict([prompts[i] for i in idx], [tasks[i] for i in idx])

    task_oof, task_means, names = crossfit_task_means(outcomes.tasks, scores, folds)
    return CrossFit(
        folds=folds,
        cost_oof=out_of_fold(folds, fit_costs, predict_costs),
        cost_model=fit_costs(np.arange(outcomes.n)),
        task_oof=task_oof,
        task_means=task_means,
        tasks=names,
    )


def crossfit_task_means(
    tasks: np.ndarray, target: np.ndarray, folds: np.ndarray
) -> tuple[np.ndarray, GroupMeans, tuple[str, ...]]:
    """Per-task shrunk means of `target` (n, k): out of fold for every item, and fitted on all
    items (for serving), with the task names they are indexed by."""
    names = tuple(sorted({str(t) for t in tasks}))
    groups = group_index(np.asarray(tasks, dtype=object), names)

    def fit(idx: np.ndarray) -> GroupMeans:
        return shrunk_means(groups[idx], target[idx], len(names))

    def predict(means: GroupMeans, idx: np.ndarray) -> np.ndarray:
        seen = means.counts[groups[idx]] > 0  # a task absent from the other folds: overall
        return np.where(seen[:, None], means.table[groups[idx]], means.overall[None, :])

    return out_of_fold(folds, fit, predict), fit(np.arange(len(target))), names
