"""A search trial's objective: what acceptance would make of a configuration on some items.

The configuration's options on the items (cross-fitted among them by `policies.fit.search`) give a
gain-per-dollar path, thinned to `SEARCH_POINTS` cost weights; the path is tested exactly as
acceptance tests a family's path (fixed sequence at the family's level, the same traffic mixes,
or point estimates when the fit is asked for no guarantee), and the value is the best accepted
point's objective under the target mix. When nothing is accepted, `PENALTY` plus the closest
point's shortfall (in the constraints' natural units) ranks configurations by how near they came.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.fit.acceptance import accept, objective_value, testing_order
from tradeoff.policies.fit.candidates import FamilyCandidates, lam_path
from tradeoff.policies.fit.mix import Strata, TrafficMix
from tradeoff.policies.fit.spaces import Config, Space
from tradeoff.policies.replay.metrics import Bootstrap
from tradeoff.policies.replay.simulate import Replay, Routes, VerdictSource, replay, single_routes
from tradeoff.policies.requirement import Requirement

SEARCH_POINTS = 32
PENALTY = 10.0


class PathJudge:
    def __init__(
        self,
        req: Requirement,
        train: Outcomes,
        base_j: int,
        verdicts: VerdictSource | None,
        mixes: Sequence[TrafficMix],
        unit: float,
        levels: dict[str, float],
        point_estimate: bool,
        seed: int,
    ) -> None:
        self.req, self.train, self.base_j, self.verdicts = req, train, base_j, verdicts
        self.mixes, self.unit, self.levels = list(mixes), unit, levels
        self.point_estimate, self.seed = point_estimate, seed
        self.cheap_first = testing_order(req) == "cheap_first"
        self._items: dict[bytes, tuple[Outcomes, Replay, Bootstrap, Strata]] = {}

    def _on(self, items: np.ndarray) -> tuple[Outcomes, Replay, Bootstrap, Strata]:
        key = items.tobytes()
        if key not in self._items:
            sub = self.train.subset(items)
            base = replay(sub, single_routes(sub.n, self.base_j))
            boot = Bootstrap.draw(sub.n, self.seed + 1)
            self._items[key] = (sub, base, boot, self.mixes[-1].on(sub.tasks))
        return self._items[key]

    def __call__(
        self, space: Space, config: Config, items: np.ndarray, pred: np.ndarray, cost: np.ndarray
    ) -> float:
        sub, base, boot, target = self._on(items)
        verdicts = self.verdicts
        sliced = None if verdicts is None else (lambda name, k: verdicts(name, k)[items])

        def routes(picks: np.ndarray) -> Routes:
            chain, samples = space.routes(config, picks)
            return Routes(chain, samples, space.verifier)

        path = lam_path(
            space.family,
            space.family,
            pred,
            cost,
            SEARCH_POINTS,
            self.cheap_first,
            lambda lam, unit, bonus: space.serve({0: config}, lam, unit, bonus),  # never served
            routes,
            space.anchor({0: config}),
            SEARCH_POINTS // 2,
        )
        family = FamilyCandidates(space.family, [path], ordered=True)
        accepted, tested = accept(
            self.req,
            [family],
            sub,
            sliced,
            base,
            boot,
            alpha=self.levels[space.family],
            point_estimate=self.point_estimate,
            mixes=self.mixes,
        )
        if accepted:
            return min(objective_value(self.req, t.replay, self.unit, target) for t in accepted)
        shortfall = min(
            (max(self._scaled(k, -m) for k, m in t.margins.items()) for t in tested),
            default=np.inf,
        )
        return PENALTY + float(min(shortfall, PENALTY)) if np.isfinite(shortfall) else 2 * PENALTY

    def _scaled(self, constraint: str, shortfall: float) -> float:
        if not np.isfinite(shortfall):
            return np.inf
        if "cost" in constraint:
            return shortfall / self.unit
        if "latency" in constraint:
            return shortfall / 1000.0
        return shortfall
