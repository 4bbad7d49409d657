"""The cost/accuracy frontier of a dataset on held-out items: singles, policy paths, oracle.

The policies (task_table and learned, with the gain-per-dollar rule) are fitted on the training
items and measured on the held-out ones, like every figure the product prints. Their paths are
traced exactly: every distinct decision boundary of the rule on the held-out items is a point
(`policies.fit.paths.trace`), so no region between two grid values is skipped. Held-out items are
the dataset's own `test` split when it has one (as `fit` and the demo use), else a seeded hash.
A point is on the Pareto set when no other attainable point is at least as accurate and at most
as costly (and better in one); the oracle is shown as the upper bound and is never on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tradeoff.evals.store import Store
from tradeoff.policies.data import Outcomes, load_outcomes
from tradeoff.policies.families.shrink import group_index
from tradeoff.policies.fit.candidates import cost_unit
from tradeoff.policies.fit.crossfit import crossfit_tables
from tradeoff.policies.fit.learned_fit import MIN_ITEMS, fit_learned
from tradeoff.policies.fit.paths import Breakpoints, breakpoints, inside
from tradeoff.policies.fit.splits import make_splits
from tradeoff.policies.replay.metrics import Bootstrap, accuracy_ci
from tradeoff.policies.replay.simulate import oracle_routes, replay, single_routes


@dataclass(frozen=True)
class FrontierPoint:
    name: str
    kind: str  # "single" | "policy" | "oracle"
    accuracy: float
    accuracy_ci: tuple[float, float]
    cost_per_request_usd: float
    pareto: bool = False


@dataclass(frozen=True)
class Frontier:
    dataset: str
    split: str
    n: int
    points: tuple[FrontierPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "points": [asdict(p) for p in self.points],
        }


def compute_frontier(
    store: Store,
    dataset: str,
    split: str | None = None,
    seed: int = 0,
    test_fraction: float | None = None,
) -> Frontier:
    """Points measured on `split` (fitted on the rest), the dataset's `test` split, or a seeded
    hash fraction."""
    outcomes = load_outcomes(store, dataset)
    splits = make_splits(
        outcomes.item_ids,
        outcomes.splits,
        seed=seed,
        test_split=split,
        test_fraction=test_fraction,
        split_option="--split",
    )
    train, test = outcomes.subset(splits.train), outcomes.subset(splits.test)
    boot = Bootstrap.draw(test.n, seed)
    points: list[FrontierPoint] = []
    for j, name in enumerate(outcomes.models):
        r = replay(test, single_routes(test.n, j))
        lo, hi = accuracy_ci(float(r.score.mean()), test.n, boot.means(r.score))
        points.append(
            FrontierPoint(name, "single", float(r.score.mean()), (lo, hi), float(r.cost.mean()))
        )
    if len(outcomes.models) > 1:
        for name, pred, cost in _predictions(train, test, seed):
            points += _traced(name, breakpoints(pred, cost, cost_unit(cost)), test, boot)
    oracle = replay(test, oracle_routes(test))
    lo, hi = accuracy_ci(float(oracle.score.mean()), test.n, boot.means(oracle.score))
    points.append(
        FrontierPoint(
            "oracle", "oracle", float(oracle.score.mean()), (lo, hi), float(oracle.cost.mean())
        )
    )
    return Frontier(dataset, splits.test_name, test.n, tuple(_mark_pareto(_dedup(points))))


def _predictions(
    train: Outcomes, test: Outcomes, seed: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(family, predicted scores, predicted costs) on the test items, fitted on train."""
    cf = crossfit_tables(train, seed)
    prompts, tasks = [str(p) for p in test.prompts], [str(t) for t in test.tasks]
    cost = cf.cost_model.predict(prompts, tasks)
    groups = group_index(test.tasks, cf.tasks)
    table = np.where(
        (groups >= 0)[:, None], cf.task_means.table[np.maximum(groups, 0)], cf.task_means.overall
    )
    out = []
    if len(set(train.tasks)) > 1:
        out.append(("task_table", table, cost))
    if train.n >= MIN_ITEMS:
        fitted = fit_learned(train, np.nanmean(train.cost[:, :, 0], axis=0), cf.folds)
        out.append(("learned", fitted.policy_template.predict(prompts, tasks), cost))
    return out


def _traced(
    family: str, points: Breakpoints, test: Outcomes, boot: Bootstrap
) -> list[FrontierPoint]:
    """One point per distinct routing of the rule on the test items, with bootstrap CIs kept
    up to date one switch at a time."""
    score, cost = test.score[:, :, 0], test.cost[:, :, 0]
    rows = np.arange(test.n)
    s_now, c_now = score[rows, points.start].copy(), cost[rows, points.start].copy()
    acc, spend = s_now.sum(), c_now.sum()
    resampled = boot.weights @ s_now
    values = points.lam
    out: list[FrontierPoint] = []
    names: set[str] = set()

    def emit(lam_hi: float, lam_lo: float) -> None:
        lam = inside(lam_hi, lam_lo)  # the rule's own parameter names the routing
        name = f"{family} lambda={lam:.3g}"
        if name in names:
            name = f"{family} lambda={lam:.6g}"
        names.add(name)
        lo, hi = accuracy_ci(float(acc / test.n), test.n, resampled)
        out.append(
            FrontierPoint(name, "policy", float(acc / test.n), (lo, hi), float(spend / test.n))
        )

    bounds = (
        np.concatenate([[np.inf], np.unique(values)[::-1], [0.0]])
        if len(values)
        else np.array([np.inf, 0.0])
    )
    emit(bounds[0], bounds[1])
    k = 0
    for e in range(len(values)):
        i, src, dst = points.item[e], points.source[e], points.target[e]
        d_s = score[i, dst] - score[i, src]
        acc += d_s
        spend += cost[i, dst] - cost[i, src]
        resampled = resampled + boot.weights[:, i] * d_s
        if e + 1 == len(values) or values[e + 1] < values[e]:
            k += 1
            emit(bounds[k], bounds[k + 1])
    return out


def _dedup(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """A path point equal to an earlier point (a single model, another path's) is shown once."""
    seen: set[tuple[float, float]] = set()
    out = []
    for p in points:
        key = (round(p.accuracy, 12), round(p.cost_per_request_usd, 15))
        if p.kind == "policy" and key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


def _mark_pareto(points: list[FrontierPoint]) -> list[FrontierPoint]:
    real = sorted(
        (p for p in points if p.kind != "oracle"),
        key=lambda p: (p.cost_per_request_usd, -p.accuracy),
    )
    best = -np.inf
    on_front: set[int] = set()
    for p in real:  # by cost ascending: Pareto when more accurate than everything cheaper
        if p.accuracy > best:
            on_front.add(id(p))
            best = p.accuracy
    out = [FrontierPoint(**{**asdict(p), "pareto": id(p) in on_front}) for p in points]
    return sorted(out, key=lambda p: (p.cost_per_request_usd, -p.accuracy))
