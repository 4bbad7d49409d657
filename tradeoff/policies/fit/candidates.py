"""Candidate policies per family, with their decisions on the training items.

Each family yields its candidates in the order acceptance tests them (`policies.fit.acceptance`).
A candidate carries its routes on the training items, made with out-of-fold predictions where
the family fits anything (`policies.fit.search`: each fold's configuration chosen and fitted
without that fold), and builds the policy that would be served.

- `single`: each model alone.
- `task_table`, `learned`, `cascade` and `best_of_k`: the gain-per-dollar rule
  (`policies.fit.paths`) on the family's options (`policies.fit.spaces`), at every cost weight on a
  grid that covers the rule's distinct routings on the training items (up to `limit`), most
  accurate first: one path per searched space (cascades and best-of-k: one per verifier).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.single import SinglePolicy
from tradeoff.policies.fit.paths import breakpoints, choose, lam_grid
from tradeoff.policies.fit.search import Searched
from tradeoff.policies.fit.spaces import assemble_routes
from tradeoff.policies.replay.simulate import Routes, single_routes


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


def searched_paths(
    family: str, searches: list[Searched], folds: np.ndarray, limit: int, cheap_first: bool
) -> FamilyCandidates:
    """One cost-weight path per search: each training item routed by its own fold's
    configuration, the served policy made of the fold pipelines (`Space.serve`)."""
    paths = []
    for s in searches:
        label = f"{family} [{s.space.label(s.fold_configs)}]"
        paths.append(
            lam_path(
                label, family, s.pred, s.cost, limit, cheap_first, _served(s), _routes(s, folds)
            )
        )
    return FamilyCandidates(family, paths, ordered=True)


def _served(s: Searched) -> Callable[[float, float], Policy]:
    return lambda lam, unit: s.space.serve(s.fold_configs, lam, unit)


def _routes(s: Searched, folds: np.ndarray) -> Callable[[np.ndarray], Routes]:
    return lambda picks: assemble_routes(s.space, s.fold_configs, folds, picks)
