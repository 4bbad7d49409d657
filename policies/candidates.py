"""Candidate policies per family, with their decisions on the training items.

Each family yields its candidates in the order acceptance tests them (`policies.acceptance`).
A candidate carries its routes on the training items, made with out-of-fold predictions where
the family fits anything (`policies.crossfit`), and builds the policy that would be served.

- `single`: each model alone.
- `task_table` and `learned`: the gain-per-dollar rule (`policies.paths`) with per-task shrunk
  scores or per-prompt predictions, at every cost weight on a grid that covers the rule's
  distinct routings on the training items (up to `limit`), most accurate first.
- `cascade` and `best_of_k`: a cheaper model (k samples of it), escalating to the baseline when
  a replayable reference-free verifier rejects its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies.base import Policy
from policies.best_of_k import BestOfKPolicy
from policies.cascade import CascadePolicy
from policies.crossfit import CrossFit
from policies.data import Outcomes
from policies.learned import LearnedPolicy
from policies.learned_fit import LearnedFit
from policies.paths import breakpoints, choose, lam_grid
from policies.replay import Routes, single_routes
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
    """A family's candidates in testing order; `ordered`: a fixed sequence (most likely to meet
    the requirement first) rather than an unordered set."""

    family: str
    candidates: list[Candidate]
    ordered: bool


def singles(train: Outcomes) -> FamilyCandidates:
    cands = [
        Candidate("single", f"single {name}", single_routes(train.n, j), _single(name))
        for j, name in enumerate(train.models)
    ]
    return FamilyCandidates("single", cands, ordered=False)


def _single(name: str) -> Callable[[], Policy]:
    return lambda: SinglePolicy(name)


def cost_unit(cost: np.ndarray) -> float:
    """The dearest model's mean predicted cost: lam is in units of it (so it is unitless)."""
    return max(float(cost.mean(axis=0).max()), 1e-12)


def lam_path(
    family: str,
    pred: np.ndarray,
    cost: np.ndarray,
    limit: int,
    cheap_first: bool,
    build: Callable[[float, float], Policy],
) -> FamilyCandidates:
    """Candidates of the gain-per-dollar rule on a lam grid over its distinct routings."""
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
                f"{family} (gain per dollar, lambda {lam:.3g})",
                Routes(picks.reshape(n, 1), ones),
                _bind(build, float(lam), unit),
            )
        )
    return FamilyCandidates(family, cands, ordered=True)


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

    return lam_path("task_table", cf.task_oof, cf.cost_oof, limit, cheap_first, build)


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

    return lam_path("learned", fitted.oof, cf.cost_oof, limit, cheap_first, build)


def chains(
    train: Outcomes, base_j: int, verifiers: tuple[str, ...], max_samples: int, best_of: bool
) -> FamilyCandidates:
    """Cheaper models escalating to the baseline under each verifier (k samples first when
    `best_of`)."""
    names = train.models
    mean_cost = np.nanmean(train.cost[:, :, 0], axis=0)
    cheaper = [j for j in np.argsort(mean_cost, kind="stable") if mean_cost[j] < mean_cost[base_j]]
    n = train.n
    cands = []
    for verifier in verifiers:
        if not best_of and verifier in GROUP_ONLY:
            continue  # one answer agrees with itself: nothing to judge
        for j in cheaper:
            chain = np.tile(np.array([j, base_j]), (n, 1))
            cheap, strong = names[j], names[base_j]
            if not best_of:
                cands.append(
                    Candidate(
                        "cascade",
                        f"cascade {cheap} -> {strong} ({verifier})",
                        Routes(chain, np.ones(n, dtype=int), verifier),
                        _cascade(cheap, strong, verifier),
                    )
                )
                continue
            for k in range(2, max_samples + 1):
                cands.append(
                    Candidate(
                        "best_of_k",
                        f"best_of_k {k}x {cheap} -> {strong} ({verifier})",
                        Routes(chain, np.full(n, k), verifier),
                        _best_of(cheap, k, verifier, strong),
                    )
                )
    return FamilyCandidates("best_of_k" if best_of else "cascade", cands, ordered=False)


def _cascade(cheap: str, strong: str, verifier: str) -> Callable[[], Policy]:
    return lambda: CascadePolicy([cheap, strong], verifier)


def _best_of(cheap: str, k: int, verifier: str, strong: str) -> Callable[[], Policy]:
    return lambda: BestOfKPolicy(cheap, k, verifier, [strong])
