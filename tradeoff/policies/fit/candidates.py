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
  Where the baseline is one of the options (the `anchor`), the path starts next to "every
  request to the baseline" and reaches lam = 0 in `ANCHOR_POINTS` small steps (the anchored
  stretch of `policies.fit.paths`), so a family whose lam = 0 routing already saves too much for
  a strict requirement still has candidates between it and the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.single import SinglePolicy
from tradeoff.policies.fit.paths import anchor_grid, breakpoints, choose, lam_grid
from tradeoff.policies.fit.search import Searched
from tradeoff.policies.fit.spaces import assemble_routes
from tradeoff.policies.replay.simulate import Routes, single_routes

ANCHOR_POINTS = 48  # steps from the baseline to the lam = 0 routing
# (lam, unit, bonus on the anchor's predicted score) -> the policy to serve
Build = Callable[[float, float, float], Policy]


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
    build: Build,
    routes: Callable[[np.ndarray], Routes] | None = None,
    anchor: int | None = None,
    anchor_points: int = ANCHOR_POINTS,
) -> list[Candidate]:
    """Candidates of the gain-per-dollar rule on a lam grid over its distinct routings, after
    the anchored stretch from option `anchor` (the baseline) when given; `pred` and `cost` are
    (n, options); `routes` turns the chosen options into routes (default: the options are the
    models)."""
    unit = cost_unit(cost)
    steps = [(float(lam), 0.0) for lam in lam_grid(breakpoints(pred, cost, unit), limit)]
    if anchor is not None:
        bonuses = anchor_grid(pred, cost, unit, anchor, anchor_points)
        steps = [(0.0, float(b)) for b in bonuses] + steps
    if cheap_first:
        steps = steps[::-1]
    n = len(pred)
    ones = np.ones(n, dtype=int)
    cands = []
    for lam, bonus in steps:
        picks = choose(pred, cost, lam, unit, anchor, bonus)
        name = f"baseline bonus {bonus:.3g}" if bonus else f"lambda {lam:.3g}"
        cands.append(
            Candidate(
                family,
                f"{label} (gain per dollar, {name})",
                routes(picks) if routes else Routes(picks.reshape(n, 1), ones),
                _bind(build, lam, unit, bonus),
            )
        )
    return cands


def _bind(build: Build, lam: float, unit: float, bonus: float) -> Callable[[], Policy]:
    return lambda: build(lam, unit, bonus)


def searched_paths(
    family: str, searches: list[Searched], folds: np.ndarray, limit: int, cheap_first: bool
) -> FamilyCandidates:
    """One cost-weight path per search: each training item routed by its own fold's
    configuration, the served policy made of the fold pipelines (`Space.serve`)."""
    paths = []
    for s in searches:
        label = f"{family} [{s.space.label(s.fold_configs)}]"
        anchor = s.space.anchor(s.fold_configs)
        paths.append(
            lam_path(
                label,
                family,
                s.pred,
                s.cost,
                limit,
                cheap_first,
                _served(s),
                _routes(s, folds),
                anchor,
            )
        )
    return FamilyCandidates(family, paths, ordered=True)


def _served(s: Searched) -> Build:
    return lambda lam, unit, bonus: s.space.serve(s.fold_configs, lam, unit, bonus)


def _routes(s: Searched, folds: np.ndarray) -> Callable[[np.ndarray], Routes]:
    return lambda picks: assemble_routes(s.space, s.fold_configs, folds, picks)
