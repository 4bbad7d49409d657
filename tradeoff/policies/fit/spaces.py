"""Configuration spaces of the routing families: what the Optuna search (`policies.fit.search`) tunes.

A space turns a configuration (the dict of an Optuna trial's parameters) into the family's
*options* on every training item: a predicted score and a predicted cost per option (a model,
or a gated chain's three options), from predictors fitted on the training items outside some
folds (`excluded`). The gain-per-dollar rule (`policies.fit.paths`) turns options into decisions,
`routes` turns decisions into what replay runs, and `serve` makes the policy to serve from the
fold pipelines (each fold's configuration fitted without that fold), averaged.

Each family's space lives with its spec in `policies.fit.families`:

- `task_table`: the strength of the empirical-Bayes shrinkage of per-task scores (1/16 to 16
  times the estimated prior) and per-request vs per-model cost.
- `learned`: the ridge penalty, how much of the prediction comes from the per-prompt ridge vs
  the per-task shrunk means (folded into the served linear model, so serving
  is unchanged), and per-request vs per-model cost.
- `cascade` / `best_of_k`: the cheap and the strong model and k.

`Pieces` holds what every configuration reuses (features per width, cost models and fits per
set of excluded folds), so a trial costs a few array operations once its fits are cached.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import optuna
import scipy.sparse as sp

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.costs import CostModel, average_cost_models, fit_cost_model
from tradeoff.policies.families.features import PromptFeatures
from tradeoff.policies.families.shrink import GroupMeans, group_index, shrunk_means
from tradeoff.policies.fit.crossfit import mean_costs, mean_scores
from tradeoff.policies.replay.simulate import Routes

Config = dict[str, Any]
Folds = frozenset[int]


class Pieces:
    """The training items' arrays and the fits every configuration shares, cached."""

    def __init__(
        self,
        train: Outcomes,
        folds: np.ndarray,
        embedding: str | None = None,
        base_j: int | None = None,
        optional_embedding: str | None = None,
    ) -> None:
        self.train, self.folds, self.embedding = train, folds, embedding
        self.base_j = base_j  # the baseline's model index (None: paths are not anchored)
        # An encoder the learned search may add (`embedding` forces one on every configuration).
        self.optional_embedding = None if embedding else optional_embedding
        self.prompts = [str(p) for p in train.prompts]
        self.task_list = [str(t) for t in train.tasks]
        self.tasks = tuple(sorted(set(self.task_list)))
        self.groups = group_index(np.asarray(self.task_list, dtype=object), self.tasks)
        self.scores, self.costs = mean_scores(train), mean_costs(train)
        self._cache: dict[tuple[Any, ...], Any] = {}

    def fitted_on(self, excluded: Folds) -> np.ndarray:
        """Mask of the items fitted on when `excluded` folds are left out (all, if none left)."""
        mask = ~np.isin(self.folds, list(excluded))
        return mask if mask.any() else np.ones(len(mask), dtype=bool)

    def cached(self, key: tuple[Any, ...], make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def cost(self, per_request: bool, excluded: Folds) -> tuple[CostModel, np.ndarray]:
        """The cost model fitted without `excluded` and its (n, m) predictions."""

        def make() -> tuple[CostModel, np.ndarray]:
            idx = np.flatnonzero(self.fitted_on(excluded))
            model = fit_cost_model(
                [self.prompts[i] for i in idx],
                [self.task_list[i] for i in idx],
                self.costs[idx],
                self.train.models,
                per_request,
            )
            return model, model.predict(self.prompts, self.task_list)

        return self.cached(("cost", per_request, excluded), make)

    def task_means(
        self, name: str, target: np.ndarray, strength: float, excluded: Folds
    ) -> tuple[GroupMeans, np.ndarray]:
        """Per-task shrunk means of `target` (n, k) fitted without `excluded`, and each item's
        row (a task absent from the fitted items gets the overall means)."""

        def make() -> tuple[GroupMeans, np.ndarray]:
            mask = self.fitted_on(excluded)
            means = shrunk_means(self.groups[mask], target[mask], len(self.tasks), strength)
            seen = means.counts[self.groups] > 0
            rows = np.where(seen[:, None], means.table[self.groups], means.overall[None, :])
            return means, rows

        return self.cached(("means", name, strength, excluded), make)

    def encoder(self, embed: bool) -> str | None:
        """The sentence encoder of the features: the forced one, else the optional one when
        `embed`."""
        return self.embedding or (self.optional_embedding if embed else None)

    def features(self, width: int, embed: bool = False) -> tuple[PromptFeatures, sp.csr_matrix]:
        encoder = self.encoder(embed)

        def make() -> tuple[PromptFeatures, sp.csr_matrix]:
            feats = PromptFeatures(list(self.tasks), width, encoder)
            return feats, feats.transform(self.prompts, self.task_list)

        return self.cached(("features", width, encoder), make)


class Space:
    """A family's configurations; see the module docstring."""

    family = ""
    verifier: str | None = None

    def __init__(self, pieces: Pieces, per_request_cost: bool = True) -> None:
        self.pieces, self.per_request_cost = pieces, per_request_cost

    def default(self, items: np.ndarray) -> Config:
        """The configuration tried first (without a search, the only one); `items` are the
        training items the search may look at."""
        raise NotImplementedError

    def alternatives(self, items: np.ndarray) -> list[Config]:
        """Configurations every study weighs beside its pick, outside the sampler (so they do
        not change what it samples); none by default."""
        return []

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        raise NotImplementedError

    def kind(self, config: Config) -> Hashable:
        """What configurations must share to be served as one average (`serve`), such as a
        success model's link; every configuration is of one kind by default."""
        return None

    def majority_kind(self, kinds: list[Hashable]) -> Hashable:
        """The kind most folds chose; on a tie the first in `kinds`' order."""
        return max(dict.fromkeys(kinds), key=kinds.count)

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        """(predicted score, predicted cost), each (n, options), for every training item."""
        raise NotImplementedError

    def routes(self, config: Config, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chain (n, L), samples (n,)) for the chosen options."""
        return picks.reshape(-1, 1), np.ones(len(picks), dtype=int)

    def serve(
        self, configs: dict[int, Config], lam: float, unit: float, bonus: float = 0.0
    ) -> Policy:
        """The policy to serve from the fold pipelines: fold f's configuration fitted without
        fold f, for every fold; `bonus` is added to the anchor option's predicted score
        (`policies.fit.paths`: the anchored stretch)."""
        raise NotImplementedError

    def anchor(self, configs: dict[int, Config]) -> int | None:
        """The option that is "every request to the baseline" under these configurations
        (None: there is none, the path starts at lam = 0). Options are models by default."""
        return self.pieces.base_j

    def describe(self, config: Config) -> str:
        raise NotImplementedError

    def label(self, configs: dict[int, Config]) -> str:
        """What is served: the folds' configuration when they agree; else their average."""
        named = {self.describe(c) for c in configs.values()}
        return named.pop() if len(named) == 1 else f"{len(named)} fold configurations averaged"

    def served_cost_model(self, configs: dict[int, Config]) -> CostModel:
        return average_cost_models(
            [self.pieces.cost(c["per_request_cost"], frozenset({f}))[0] for f, c in configs.items()]
        )

    def _costs(self, trial: optuna.Trial) -> bool:
        choices = [True, False] if self.per_request_cost else [False]
        return bool(trial.suggest_categorical("per_request_cost", choices))


def per_request_note(config: Config) -> str:
    return "" if config["per_request_cost"] else ", per-model cost"


def assemble_routes(
    space: Space, configs: dict[int, Config], folds: np.ndarray, picks: np.ndarray
) -> Routes:
    """Routes of every item under its own fold's configuration."""
    chain = np.full((len(picks), 2), -1)
    samples = np.ones(len(picks), dtype=int)
    for f, config in configs.items():
        rows = folds == f
        c, s = space.routes(config, picks)
        chain[rows, : c.shape[1]], samples[rows] = c[rows], s[rows]
    width = max(1, int((chain >= 0).any(axis=0).sum()))
    return Routes(chain[:, :width], samples, space.verifier)
