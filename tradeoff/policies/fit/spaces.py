"""Configuration spaces of the routing families: what the Optuna search (`policies.fit.search`) tunes.

A space turns a configuration (the dict of an Optuna trial's parameters) into the family's
*options* on every training item: a predicted score and a predicted cost per option (a model,
or a gated chain's three options), from predictors fitted on the training items outside some
folds (`excluded`). The gain-per-dollar rule (`policies.fit.paths`) turns options into decisions,
`routes` turns decisions into what replay runs, and `serve` makes the policy to serve from the
fold pipelines (each fold's configuration fitted without that fold), averaged.

- `task_table`: the strength of the empirical-Bayes shrinkage of per-task scores (1/16 to 16
  times the estimated prior) and per-request vs per-model cost.
- `learned`: the ridge penalty, how much of the prediction comes from the per-prompt ridge vs
  the per-task shrunk means (folded into the served linear model, so serving
  is unchanged), and per-request vs per-model cost.
- `cascade` / `best_of_k`: the cheap and the strong model and k (`policies.fit.chain_space`).

`Pieces` holds what every configuration reuses (features per width, cost models and fits per
set of excluded folds), so a trial costs a few array operations once its fits are cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import scipy.sparse as sp

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.costs import CostModel, average_cost_models, fit_cost_model
from tradeoff.policies.families.features import N_FEATURES, PromptFeatures
from tradeoff.policies.families.learned import LearnedPolicy
from tradeoff.policies.families.shrink import GroupMeans, group_index, shrunk_means
from tradeoff.policies.families.task_table import TaskTablePolicy
from tradeoff.policies.fit.crossfit import mean_costs, mean_scores
from tradeoff.policies.fit.learned_fit import ridge
from tradeoff.policies.replay.simulate import Routes

Config = dict[str, Any]
Folds = frozenset[int]
ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)
SHRINK = (1 / 16, 16.0)


class Pieces:
    """The training items' arrays and the fits every configuration shares, cached."""

    def __init__(self, train: Outcomes, folds: np.ndarray, embedding: str | None = None) -> None:
        self.train, self.folds, self.embedding = train, folds, embedding
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

    def features(self, width: int) -> tuple[PromptFeatures, sp.csr_matrix]:
        def make() -> tuple[PromptFeatures, sp.csr_matrix]:
            feats = PromptFeatures(list(self.tasks), width, self.embedding)
            return feats, feats.transform(self.prompts, self.task_list)

        return self.cached(("features", width), make)


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

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        raise NotImplementedError

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        """(predicted score, predicted cost), each (n, options), for every training item."""
        raise NotImplementedError

    def routes(self, config: Config, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chain (n, L), samples (n,)) for the chosen options."""
        return picks.reshape(-1, 1), np.ones(len(picks), dtype=int)

    def serve(self, configs: dict[int, Config], lam: float, unit: float) -> Policy:
        """The policy to serve from the fold pipelines: fold f's configuration fitted without
        fold f, for every fold."""
        raise NotImplementedError

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


class TaskTableSpace(Space):
    family = "task_table"

    def default(self, items: np.ndarray) -> Config:
        return {"shrink": 1.0, "per_request_cost": self.per_request_cost}

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        return {
            "shrink": trial.suggest_float("shrink", *SHRINK, log=True),
            "per_request_cost": self._costs(trial),
        }

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        p = self.pieces
        rows = p.task_means("scores", p.scores, config["shrink"], excluded)[1]
        return rows, p.cost(config["per_request_cost"], excluded)[1]

    def serve(self, configs: dict[int, Config], lam: float, unit: float) -> Policy:
        p = self.pieces
        fitted = [
            p.task_means("scores", p.scores, c["shrink"], frozenset({f}))[0]
            for f, c in configs.items()
        ]
        table = np.mean([m.table for m in fitted], axis=0)
        scores = {t: [float(x) for x in row] for t, row in zip(p.tasks, table, strict=True)}
        overall = [float(x) for x in np.mean([m.overall for m in fitted], axis=0)]
        return TaskTablePolicy.by_request(
            list(p.train.models), scores, overall, self.served_cost_model(configs), lam, unit
        )

    def describe(self, config: Config) -> str:
        return f"shrinkage x{config['shrink']:.2g}{per_request_note(config)}"


class LearnedSpace(Space):
    family = "learned"

    def default(self, items: np.ndarray) -> Config:
        return {
            "alpha": 3.0,
            "width": N_FEATURES,
            "blend": 1.0,
            "per_request_cost": self.per_request_cost,
        }

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        # The hashing width stays at the default: 2**10 columns predicted as well as 2**12 on
        # every set measured, and each width doubles the ridge fits.
        return {
            "alpha": trial.suggest_categorical("alpha", ALPHAS),
            "width": N_FEATURES,
            "blend": trial.suggest_float("blend", 0.0, 1.0),
            "per_request_cost": self._costs(trial),
        }

    def _ridge(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        p = self.pieces

        def make() -> tuple[np.ndarray, np.ndarray]:
            x = p.features(config["width"])[1]
            mask = p.fitted_on(excluded)
            return ridge(x[mask], p.scores[mask], config["alpha"])

        key = ("ridge", config["alpha"], config["width"], excluded)
        return p.cached(key, make)

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        p = self.pieces
        blend = config["blend"]
        pred = p.task_means("scores", p.scores, 1.0, excluded)[1] * (1 - blend)
        if blend > 0:
            coef, intercept = self._ridge(config, excluded)
            x = p.features(config["width"])[1]
            pred = pred + blend * (np.asarray(x @ coef.T) + intercept)
        return pred, p.cost(config["per_request_cost"], excluded)[1]

    def linear(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) of one linear model predicting what `options` predicts: the task
        means' share is folded into the ridge's task columns and intercept."""
        p = self.pieces
        feats = p.features(config["width"])[0]
        blend, m = config["blend"], len(p.train.models)
        coef, intercept = np.zeros((m, feats.width)), np.zeros(m)
        if blend > 0:
            coef, intercept = self._ridge(config, excluded)
            coef, intercept = coef * blend, intercept * blend
        means = p.task_means("scores", p.scores, 1.0, excluded)[0]
        for g in range(len(p.tasks)):  # feature columns of the tasks follow the hashed ones
            coef[:, feats.n_features + g] += (1 - blend) * (means.table[g] - means.overall)
        return coef, intercept + (1 - blend) * means.overall

    def serve(self, configs: dict[int, Config], lam: float, unit: float) -> Policy:
        p = self.pieces
        linear = [self.linear(c, frozenset({f})) for f, c in configs.items()]
        return LearnedPolicy(
            models=list(p.train.models),
            costs=[float(c) for c in np.nanmean(p.costs, axis=0)],
            coef=np.mean([c for c, _ in linear], axis=0),
            intercept=np.mean([b for _, b in linear], axis=0),
            tasks=list(p.tasks),
            rule="per_request",
            lam=lam,
            n_features=N_FEATURES,
            cost_model=self.served_cost_model(configs),
            cost_unit=unit,
            embedding_model=p.embedding,
        )

    def describe(self, config: Config) -> str:
        return (
            f"ridge alpha {config['alpha']:g}, {config['blend']:.0%} per-prompt"
            f"{per_request_note(config)}"
        )
