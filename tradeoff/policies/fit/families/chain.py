"""Fitting `cascade` and `best_of_k`: the configuration space of a gated chain
(`policies.families.gate`) for one verifier, and the two families' specs.

A configuration is a (cheap, strong) pair of models, the cheap one cheaper on average, and for
best-of-k the number of cheap samples k. Its options per request are the gate's three: the cheap
model alone, the chain (k cheap samples, escalating to the strong model when the verifier
rejects them all), the strong model alone, with per-task shrunk means of each option's score and
of the escalation rate (the chain is replayed on the recorded responses) and per-request costs.
By default the strong model is the baseline and the cheap one the most accurate model cheaper
than it on the items the search may look at. The served policy is the configuration most folds
chose, fitted on every training item (two model pairs cannot be averaged).
"""

from __future__ import annotations

import numpy as np
import optuna

from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.best_of_k import BestOfKPolicy
from tradeoff.policies.families.cascade import CascadePolicy
from tradeoff.policies.families.gate import CHAIN, STRONG, Gate, option_costs
from tradeoff.policies.families.shrink import GroupMeans
from tradeoff.policies.families.verifiers import GROUP_ONLY
from tradeoff.policies.fit.spaces import Config, Folds, Pieces, Space, per_request_note
from tradeoff.policies.fit.spec import FamilySpec, FitContext
from tradeoff.policies.replay.simulate import Routes, VerdictSource, replay


class ChainSpace(Space):
    def __init__(
        self,
        pieces: Pieces,
        base_j: int,
        verifier: str,
        best_of: bool,
        max_samples: int,
        verdicts: VerdictSource,
        per_request_cost: bool = True,
    ) -> None:
        super().__init__(pieces, per_request_cost)
        self.family = "best_of_k" if best_of else "cascade"
        self.verifier, self.base_j, self.verdicts = verifier, base_j, verdicts
        self.ks = list(range(2, max_samples + 1)) if best_of else [1]
        price = np.nanmean(pieces.costs, axis=0)
        m = len(price)
        self.pairs = [f"{a}>{b}" for a in range(m) for b in range(m) if price[a] < price[b]]
        self.cheaper = [j for j in range(m) if price[j] < price[base_j]]

    @property
    def empty(self) -> bool:
        return not self.cheaper or not self.ks

    def default(self, items: np.ndarray) -> Config:
        accuracy = self.pieces.scores[items].mean(axis=0)
        cheap = max(self.cheaper, key=lambda j: (accuracy[j], -j))
        return {"pair": f"{cheap}>{self.base_j}", "k": self.ks[0]}

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        config: Config = {"pair": trial.suggest_categorical("pair", self.pairs)}
        config["k"] = trial.suggest_categorical("k", self.ks)
        return config

    @staticmethod
    def models(config: Config) -> tuple[int, int]:
        cheap, strong = (int(x) for x in str(config["pair"]).split(">"))
        return cheap, strong

    def _chain(self, config: Config) -> np.ndarray:
        """(n, 4) per item: cheap score, chain score, strong score, escalated (0/1)."""
        p = self.pieces
        cheap, strong = self.models(config)
        k = int(config["k"])

        def make() -> np.ndarray:
            n = p.train.n
            routes = Routes(
                np.tile(np.array([cheap, strong]), (n, 1)), np.full(n, k), self.verifier
            )
            chain = replay(p.train, routes, self.verdicts)
            escalated = (chain.final == strong).astype(float)
            return np.column_stack(
                [p.train.score[:, cheap, 0], chain.score, p.train.score[:, strong, 0], escalated]
            )

        return p.cached(("chain", self.verifier, cheap, strong, k), make)

    def _means(self, config: Config, excluded: Folds) -> tuple[GroupMeans, np.ndarray]:
        key = f"chain {self.verifier} {config['pair']} {config['k']}"
        return self.pieces.task_means(key, self._chain(config), 1.0, excluded)

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        cheap, strong = self.models(config)
        rows = self._means(config, excluded)[1]
        cost = self.pieces.cost(self.per_request_cost, excluded)[1]
        return rows[:, :3], option_costs(cost[:, cheap], cost[:, strong], rows[:, 3], config["k"])

    def routes(self, config: Config, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cheap, strong = self.models(config)
        first = np.where(picks == STRONG, strong, cheap)
        second = np.where(picks == CHAIN, strong, -1)
        samples = np.where(picks == CHAIN, int(config["k"]), 1)
        return np.stack([first, second], axis=1), samples

    @staticmethod
    def most_chosen(configs: dict[int, Config]) -> Config:
        """The configuration most folds chose (the earliest fold's on a tie)."""
        chosen = [configs[f] for f in sorted(configs)]
        keys = [(c["pair"], c["k"]) for c in chosen]
        return max(chosen, key=lambda c: keys.count((c["pair"], c["k"])))

    def label(self, configs: dict[int, Config]) -> str:
        return self.describe(self.most_chosen(configs))

    def anchor(self, configs: dict[int, Config]) -> int | None:
        """The strong option, where every fold's strong model is the baseline."""
        strong = {self.models(c)[1] for c in configs.values()}
        return STRONG if strong == {self.base_j} else None

    def serve(
        self, configs: dict[int, Config], lam: float, unit: float, bonus: float = 0.0
    ) -> Policy:
        """Two model pairs cannot be averaged: the configuration most folds chose, fitted on
        every training item."""
        config = self.most_chosen(configs)
        p = self.pieces
        names = p.train.models
        cheap, strong = (names[j] for j in self.models(config))
        k = int(config["k"])
        means = self._means(config, frozenset())[0]
        table, overall = means.table.copy(), means.overall.copy()
        if bonus and self.anchor(configs) == STRONG:  # the anchored stretch (`fit.paths`)
            table[:, STRONG] += bonus
            overall[STRONG] += bonus
        tables = {t: [float(x) for x in row] for t, row in zip(p.tasks, table, strict=True)}
        default = [float(x) for x in overall]
        costs = p.cost(self.per_request_cost, frozenset())[0].select([cheap, strong])
        gate = Gate((cheap, strong), k, tables, default, costs, lam, unit)
        if self.family == "cascade":
            return CascadePolicy([cheap, strong], str(self.verifier), gate)
        return BestOfKPolicy(cheap, k, str(self.verifier), [strong], gate)

    def describe(self, config: Config) -> str:
        names = self.pieces.train.models
        cheap, strong = (names[j] for j in self.models(config))
        k = f"{config['k']}x " if self.family == "best_of_k" else ""
        return f"{k}{cheap} -> {strong} ({self.verifier}){per_request_note(self._full(config))}"

    def _full(self, config: Config) -> Config:
        return config | {"per_request_cost": self.per_request_cost}


def distinct_verifiers(verdicts: VerdictSource, verifiers: list[str], ks: list[int]) -> list[str]:
    """`verifiers` less those whose verdicts equal an earlier one's on every recorded response
    (for every k): their chains replay identically, so their paths are one path, and each
    copy would take a share of the error budget for nothing (on math answers `answer_parses`
    and `json_valid` accept the same responses)."""
    seen: set[bytes] = set()
    out = []
    for v in verifiers:
        key = b"".join(np.packbits(np.asarray(verdicts(v, k), dtype=bool)).tobytes() for k in ks)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


class CascadeSpec(FamilySpec):
    """A cheap model's answer, escalated to a strong one when a verifier rejects it; one
    space (and path) per usable verifier whose verdicts differ from the others'."""

    name = "cascade"
    simplicity = 2
    no_space = "no model is cheaper than the baseline"
    best_of = False

    def unusable(self, ctx: FitContext) -> str | None:
        reason = super().unusable(ctx)
        if reason is None and not ctx.verifiers:
            reason = "; ".join(ctx.no_verifier) or "no reference-free verifier can be replayed"
        return reason

    def spaces(self, ctx: FitContext) -> list[Space]:
        if ctx.verdicts is None:
            return []
        ks = list(range(2, ctx.samples + 1)) if self.best_of else [1]
        # One answer agrees with itself: group verifiers need best-of-k's samples.
        usable = [v for v in ctx.verifiers if self.best_of or v not in GROUP_ONLY]
        chains = [
            ChainSpace(
                ctx.pieces,
                ctx.base_j,
                v,
                self.best_of,
                ctx.samples,
                ctx.verdicts,
                ctx.per_request_cost,
            )
            for v in distinct_verifiers(ctx.verdicts, usable, ks or [1])
        ]
        return [c for c in chains if not c.empty]


class BestOfKSpec(CascadeSpec):
    """k samples of a cheap model, kept when the verifier accepts one, else a strong model."""

    name = "best_of_k"
    simplicity = 3
    best_of = True

    def unusable(self, ctx: FitContext) -> str | None:
        reason = super().unusable(ctx)
        if reason is None and ctx.samples < 2:
            reason = "no repeated samples recorded (best_of_k needs k >= 2 samples per item)"
        return reason
