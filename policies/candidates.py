"""Candidate policies per family, with their decisions on the training items.

Each family yields its candidates in the order acceptance tests them (`policies.acceptance`).
A candidate carries its routes on the training items, made with out-of-fold predictions where
the family fits anything (`policies.crossfit`), and builds the policy that would be served.

- `single`: each model alone.
- `task_table` and `learned`: the gain-per-dollar rule (`policies.paths`) with per-task shrunk
  scores or per-prompt predictions, at every cost weight on a grid that covers the rule's
  distinct routings on the training items (up to `limit`), most accurate first.
- `cascade` and `best_of_k`: a cheaper model (k samples of it), escalating to the baseline when
  a replayable reference-free verifier rejects its answer, gated per request (`policies.gate`):
  one cost-weight path per cheaper model, verifier (and k).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies.base import Policy
from policies.best_of_k import BestOfKPolicy
from policies.cascade import CascadePolicy
from policies.crossfit import CrossFit, crossfit_task_means
from policies.data import Outcomes
from policies.gate import CHAIN, STRONG, Gate, option_costs
from policies.learned import LearnedPolicy
from policies.learned_fit import LearnedFit
from policies.paths import breakpoints, choose, lam_grid
from policies.replay import Routes, VerdictSource, replay, single_routes
from policies.single import SinglePolicy
from policies.task_table import TaskTablePolicy
from policies.verifiers import GROUP_ONLY

# Simpler families win ties: they are easier to trust and to serve.
SIMPLICITY = {"single": 0, "task_table": 1, "cascade": 2, "best_of_k": 3, "learned": 4}


@dataclass(frozen=True)
class Candidate:
    family: str
    label: str
    routes: Routes  # decisions on the training items
    build: Callable[[], Policy]


@dataclass(frozen=True)
class FamilyCandidates:
    """A family's candidates: one or more `paths`, each in testing order when `ordered` (a
    fixed sequence, the most likely to meet the requirement first), else unordered sets."""

    family: str
    paths: list[list[Candidate]]
    ordered: bool

    @property
    def candidates(self) -> list[Candidate]:
        return [c for path in self.paths for c in path]


def singles(train: Outcomes) -> FamilyCandidates:
    cands = [
        Candidate("single", f"single {name}", single_routes(train.n, j), _single(name))
        for j, name in enumerate(train.models)
    ]
    return FamilyCandidates("single", [cands], ordered=False)


def _single(name: str) -> Callable[[], Policy]:
    return lambda: SinglePolicy(name)


def cost_unit(cost: np.ndarray) -> float:
    """The dearest model's mean predicted cost: lam is in units of it (so it is unitless)."""
    return max(float(cost.mean(axis=0).max()), 1e-12)


def lam_path(
    label: str,
    family: str,
    pred: np.ndarray,
    cost: np.ndarray,
    limit: int,
    cheap_first: bool,
    build: Callable[[float, float], Policy],
    routes: Callable[[np.ndarray], Routes] | None = None,
) -> list[Candidate]:
    """Candidates of the gain-per-dollar rule on a lam grid over its distinct routings; `pred`
    and `cost` are (n, options); `routes` turns the chosen options into routes (default: the
    options are the models)."""
    unit = cost_unit(cost)
    grid = lam_grid(breakpoints(pred, cost, unit), limit)
    if cheap_first:
        grid = grid[::-1]
    n = len(pred)
    ones = np.ones(n, dtype=int)
    cands = []
    for lam in grid:
        picks = choose(pred, cost, float(lam), unit)
        cands.append(
            Candidate(
                family,
                f"{label} (gain per dollar, lambda {lam:.3g})",
                routes(picks) if routes else Routes(picks.reshape(n, 1), ones),
                _bind(build, float(lam), unit),
            )
        )
    return cands


def _bind(build: Callable[[float, float], Policy], lam: float, unit: float) -> Callable[[], Policy]:
    return lambda: build(lam, unit)


def task_tables(train: Outcomes, cf: CrossFit, limit: int, cheap_first: bool) -> FamilyCandidates:
    models = list(train.models)
    scores = {
        t: list(map(float, row)) for t, row in zip(cf.tasks, cf.task_means.table, strict=True)
    }

    def build(lam: float, unit: float) -> Policy:
        overall = [float(x) for x in cf.task_means.overall]
        return TaskTablePolicy.by_request(models, scores, overall, cf.cost_model, lam, unit)

    path = lam_path("task_table", "task_table", cf.task_oof, cf.cost_oof, limit, cheap_first, build)
    return FamilyCandidates("task_table", [path], ordered=True)


def learned_routers(
    cf: CrossFit, fitted: LearnedFit, limit: int, cheap_first: bool
) -> FamilyCandidates:
    def build(lam: float, unit: float) -> Policy:
        params = fitted.policy_template.to_params() | {
            "rule": "per_request",
            "lam": lam,
            "cost_model": cf.cost_model.to_params(),
            "cost_unit": unit,
        }
        return LearnedPolicy.from_params(params)

    path = lam_path("learned", "learned", fitted.oof, cf.cost_oof, limit, cheap_first, build)
    return FamilyCandidates("learned", [path], ordered=True)


def chains(
    train: Outcomes,
    cf: CrossFit,
    base_j: int,
    verifiers: tuple[str, ...],
    max_samples: int,
    best_of: bool,
    limit: int,
    cheap_first: bool,
    verdicts: VerdictSource,
) -> FamilyCandidates:
    """Per cheaper model and verifier (and k for best-of-k), a path of gated chains escalating
    to the baseline (`policies.gate`): per request, the cheap model alone, the chain, or the
    baseline alone, by the gain-per-dollar rule."""
    family = "best_of_k" if best_of else "cascade"
    mean_cost = np.nanmean(train.cost[:, :, 0], axis=0)
    cheaper = [j for j in np.argsort(mean_cost, kind="stable") if mean_cost[j] < mean_cost[base_j]]
    paths = []
    for verifier in verifiers:
        if not best_of and verifier in GROUP_ONLY:
            continue  # one answer agrees with itself: nothing to judge
        for j in cheaper:
            for k in range(2, max_samples + 1) if best_of else [1]:
                paths.append(
                    _gated(
                        train, cf, int(j), base_j, verifier, k, limit, cheap_first, verdicts, family
                    )
                )
    return FamilyCandidates(family, paths, ordered=True)


def _gated(
    train: Outcomes,
    cf: CrossFit,
    j: int,
    base_j: int,
    verifier: str,
    k: int,
    limit: int,
    cheap_first: bool,
    verdicts: VerdictSource,
    family: str,
) -> list[Candidate]:
    n, names = train.n, train.models
    cheap, strong = names[j], names[base_j]
    chain = replay(
        train, Routes(np.tile(np.array([j, base_j]), (n, 1)), np.full(n, k), verifier), verdicts
    )
    escalated = (chain.final == base_j).astype(float)
    truth = np.stack([train.score[:, j, 0], chain.score, train.score[:, base_j, 0]], axis=1)
    target = np.column_stack([truth, escalated])
    oof, final, names_t = crossfit_task_means(train.tasks, target, cf.folds)
    cost = option_costs(cf.cost_oof[:, j], cf.cost_oof[:, base_j], oof[:, 3], k)
    tables = {t: [float(x) for x in row] for t, row in zip(names_t, final.table, strict=True)}
    default = [float(x) for x in final.overall]
    costs2 = cf.cost_model.select([cheap, strong])

    def build(lam: float, unit: float) -> Policy:
        gate = Gate((cheap, strong), k, tables, default, costs2, lam, unit)
        if family == "cascade":
            return CascadePolicy([cheap, strong], verifier, gate)
        return BestOfKPolicy(cheap, k, verifier, [strong], gate)

    def routes(picks: np.ndarray) -> Routes:
        first = np.where(picks == STRONG, base_j, j)
        second = np.where(picks == CHAIN, base_j, -1)
        samples = np.where(picks == CHAIN, k, 1)
        return Routes(np.stack([first, second], axis=1), samples, verifier)

    label = f"{family} {f'{k}x ' if family == 'best_of_k' else ''}{cheap} -> {strong} ({verifier})"
    return lam_path(label, family, oof[:, :3], cost, limit, cheap_first, build, routes)
