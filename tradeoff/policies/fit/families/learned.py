"""Fitting `learned`: a per-prompt router, searched over its success model, penalty, blend and
per-request vs per-model cost (`policies.fit.spaces`).

Two success models, chosen per dataset by the search nested in the cross-fit (so the choice
costs no error budget): a ridge (linear probability) model blended with per-task means, and a
logistic one (calibrated probabilities, served with `link="logistic"`). At a strict requirement
only the tail matters, "both models near-certain", which a linear probability model cannot say;
the logistic configuration is an alternative every study weighs beside its pick
(`Space.alternatives`, `policies.fit.search`).
Fold models are averaged on their own scale (the logistic ones in logits), so every fold must
be of one kind (link and embeddings): where the studies chose different kinds, each fold takes
its own study's best of the kind most studies chose (`policies.fit.search`), before its options
are computed, so the path acceptance tests is the one served.

Sentence embeddings (`policies.families.embeddings`): with `--embedding-model` every
configuration uses them; otherwise, when an encoder is installed (`installed_encoder`, or
`FitOptions.try_embedding`), the search may add them (`embed`) and keeps them only where the
cross-fitted objective says so, the same nested search that costs no error budget. They cost
~125 ms of CPU per decision with all-MiniLM-L6-v2 in numpy (`benchmarks/README.md`).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import optuna

from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.features import N_FEATURES
from tradeoff.policies.families.learned import LearnedPolicy, apply_link
from tradeoff.policies.fit.learned_fit import MIN_ITEMS, logistic, ridge
from tradeoff.policies.fit.spaces import Config, Folds, Space, per_request_note
from tradeoff.policies.fit.spec import FamilySpec, FitContext

ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)


class LearnedSpace(Space):
    family = "learned"

    def default(self, items: np.ndarray) -> Config:
        return {
            "link": "identity",
            "embed": False,
            "alpha": 3.0,
            "width": N_FEATURES,
            "blend": 1.0,
            "per_request_cost": self.per_request_cost,
        }

    def alternatives(self, items: np.ndarray) -> list[Config]:
        logistic_ = self.default(items) | {"link": "logistic", "alpha": 1.0}
        out = [logistic_]
        if self.pieces.optional_embedding:
            out += [c | {"embed": True} for c in (self.default(items), logistic_)]
        return out

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        # The hashing width stays at the default: 2**10 columns predicted as well as 2**12 on
        # every set measured, and each width doubles the ridge fits. The logistic model is an
        # alternative (`alternatives`), not a trial parameter: TPE tunes the ridge as before.
        config = {
            "link": "identity",
            "alpha": trial.suggest_categorical("alpha", ALPHAS),
            "width": N_FEATURES,
            "blend": trial.suggest_float("blend", 0.0, 1.0),
            "per_request_cost": self._costs(trial),
        }
        embed = self.pieces.optional_embedding and trial.suggest_categorical("embed", [False, True])
        return config | {"embed": bool(embed)}

    def kind(self, config: Config) -> tuple[str, bool]:
        return _kind(config)

    def majority_kind(self, kinds: list[Hashable]) -> Hashable:
        """On a tie the simpler kind (identity, no embeddings)."""
        return max(sorted(set(kinds)), key=kinds.count)  # type: ignore[type-var]

    def _ridge(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) of the success model (ridge or logistic) fitted without
        `excluded`."""
        p = self.pieces
        link = config.get("link", "identity")
        fit = logistic if link == "logistic" else ridge

        def make() -> tuple[np.ndarray, np.ndarray]:
            x = p.features(config["width"], _embed(config))[1]
            mask = p.fitted_on(excluded)
            return fit(x[mask], p.scores[mask], config["alpha"])

        key = (link, config["alpha"], config["width"], _embed(config), excluded)
        return p.cached(key, make)

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        p = self.pieces
        if config.get("link") == "logistic":
            coef, intercept = self._ridge(config, excluded)
            x = p.features(config["width"], _embed(config))[1]
            z = np.asarray(x @ coef.T) + intercept
            return apply_link(z, "logistic"), p.cost(config["per_request_cost"], excluded)[1]
        blend = config["blend"]
        pred = p.task_means("scores", p.scores, 1.0, excluded)[1] * (1 - blend)
        if blend > 0:
            coef, intercept = self._ridge(config, excluded)
            x = p.features(config["width"], _embed(config))[1]
            pred = pred + blend * (np.asarray(x @ coef.T) + intercept)
        return pred, p.cost(config["per_request_cost"], excluded)[1]

    def linear(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        """(coef, intercept) of one linear model predicting what `options` predicts: the task
        means' share is folded into the ridge's task columns and intercept."""
        p = self.pieces
        if config.get("link") == "logistic":
            return self._ridge(config, excluded)
        feats = p.features(config["width"], _embed(config))[0]
        blend, m = config["blend"], len(p.train.models)
        coef, intercept = np.zeros((m, feats.width)), np.zeros(m)
        if blend > 0:
            coef, intercept = self._ridge(config, excluded)
            coef, intercept = coef * blend, intercept * blend
        means = p.task_means("scores", p.scores, 1.0, excluded)[0]
        for g in range(len(p.tasks)):  # feature columns of the tasks follow the hashed ones
            coef[:, feats.n_features + g] += (1 - blend) * (means.table[g] - means.overall)
        return coef, intercept + (1 - blend) * means.overall

    def serve(
        self, configs: dict[int, Config], lam: float, unit: float, bonus: float = 0.0
    ) -> Policy:
        p = self.pieces
        link, embed = served_kind(configs)
        chosen = {f: c for f, c in configs.items() if _kind(c) == (link, embed)}
        linear = [self.linear(c, frozenset({f})) for f, c in chosen.items()]
        anchor = p.base_j if bonus and p.base_j is not None else None
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
            embedding_model=p.encoder(embed),
            link=link,
            anchor=None if anchor is None else p.train.models[anchor],
            bonus=bonus if anchor is not None else 0.0,
        )

    def describe(self, config: Config) -> str:
        embedded = ", sentence embeddings" if _embed(config) else ""
        if config.get("link") == "logistic":
            return f"logistic C {1 / config['alpha']:.3g}{embedded}{per_request_note(config)}"
        return (
            f"ridge alpha {config['alpha']:g}, {config['blend']:.0%} per-prompt"
            f"{embedded}{per_request_note(config)}"
        )


def _embed(config: Config) -> bool:
    return bool(config.get("embed", False))


def _kind(config: Config) -> tuple[str, bool]:
    return str(config.get("link", "identity")), _embed(config)


def served_kind(configs: dict[int, Config]) -> tuple[str, bool]:
    """The (link, embeddings) most folds chose; on a tie the simpler one (identity, none)."""
    kinds = [_kind(c) for c in configs.values()]
    return max(sorted(set(kinds)), key=kinds.count)


class LearnedSpec(FamilySpec):
    name = "learned"
    simplicity = 4
    reports_models_used = True

    def unusable(self, ctx: FitContext) -> str | None:
        reason = super().unusable(ctx)
        if reason is None and ctx.train.n < MIN_ITEMS:
            reason = f"needs at least {MIN_ITEMS} training items (has {ctx.train.n})"
        return reason

    def spaces(self, ctx: FitContext) -> list[Space]:
        return [LearnedSpace(ctx.pieces, ctx.per_request_cost)]
