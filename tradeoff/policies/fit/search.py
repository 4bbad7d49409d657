"""The Optuna search over each family's configuration, cross-fitted like every other fit.

A family's configuration (`policies.fit.spaces`: shrinkage strength, ridge penalty, how much of the
prediction is per-prompt, per-request cost on or off, a cascade's cheap and strong model, k) is
chosen by an Optuna study (TPE, seeded; the default configuration is its first trial). A trial's
objective is what acceptance would make of that configuration on the items the study may look
at (`policies.fit.objective`): its options cross-fitted among those items, its gain-per-dollar path
tested as a fixed sequence at the family's error level on the same traffic mixes, the value the
best accepted point's objective. The best of many noisy trials looks better than it is, so the
default configuration stays unless the best trial beats it by `DEFAULT_WITHIN` (2%, as a complex
family must beat a simpler one).

The search must not make the guarantee an optimist's pick, so it is *nested* in the cross-fit:
for each fold f, a study that sees only the other folds (its trials cross-fitted among them)
chooses fold f's configuration (its pick, or one of the space's pre-specified `alternatives`,
such as another success model, where that beats the pick clearly), and fold f's options come
from that configuration fitted on the other folds. Every training item's decision thus comes from a search and a fit that never saw
its outcome, exactly as for a plain cross-fitted predictor: the search is part of the learner
that acceptance tests, and needs no share of the error budget however many trials it runs
(`tests/policies/test_search.py`: false acceptances stay under the level, where testing the
search's pick on the items it was picked on would not).

The served policy is the fold pipelines themselves, averaged (`Space.serve`): the per-task
tables, the linear routers and the cost models of the folds are each one linear map, so their
average is one table or one linear model, served as fast as before, whose cost weight means what
it meant in the folds. Only configurations of one kind average (`Space.kind`: a ridge and a
logistic success model do not), so where the studies chose different kinds every fold takes its
own study's best of the kind most studies chose before its options are computed: the path
acceptance tests is then the one served (had the minority folds kept their kind, the cost weight
would be chosen on options the served average never gives). The kind is the one choice not
nested: one bit, by a vote of studies of which all but one saw the fold. (A cascade cannot
average two model pairs: it serves the configuration most folds chose, fitted on every training
item.) `n_trials` is each study's budget; with 1
there is no search and every fold uses the default configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from tradeoff.policies.fit.spaces import Config, Space

# (config, items) -> the options cross-fitted among `items`, judged on them: lower is better.
Judge = Callable[[Space, Config, np.ndarray, np.ndarray, np.ndarray], float]
STARTUP = 8  # random trials before TPE models the objective
DEFAULT_WITHIN = 0.02  # relative objective gain a searched configuration must show


@dataclass
class Searched:
    """The nested search's result: out-of-fold options under each fold's configuration."""

    space: Space
    pred: np.ndarray  # (n, options)
    cost: np.ndarray
    fold_configs: dict[int, Config]
    trials: int
    values: dict[str, float] = field(default_factory=dict)  # mean over the studies

    def summary(self) -> dict[str, Any]:
        return {
            "per_fold": [self.space.describe(c) for _, c in sorted(self.fold_configs.items())],
            "trials_per_study": self.trials,
            "studies": len(self.fold_configs) if self.trials > 1 else 0,
            **self.values,
        }


def cross_fitted_search(
    space: Space, judge: Judge, folds: np.ndarray, n_trials: int, seed: int
) -> Searched:
    """See the module docstring."""
    names = [int(f) for f in np.unique(folds)]
    search = n_trials > 1 and len(names) >= 3  # a study needs two folds of its own
    configs: dict[int, Config] = {}
    found: list[dict[str, float]] = []
    pred: np.ndarray | None = None
    cost: np.ndarray | None = None
    by_kind: dict[int, dict[Hashable, Config]] = {}
    for f in names:
        items = np.flatnonzero(folds != f)
        if search:
            configs[f], values, by_kind[f] = _study(
                space, judge, folds, items, f, n_trials, seed * 1009 + f
            )
            found.append(values)
        else:
            configs[f] = space.default(items if len(items) else np.arange(len(folds)))
    if by_kind:
        # One kind for every fold (see the module docstring): a fold whose study chose another
        # kind takes its own study's best of the kind most studies chose.
        kind = space.majority_kind([space.kind(c) for c in configs.values()])
        for f in names:
            if space.kind(configs[f]) != kind and kind in by_kind[f]:
                configs[f] = by_kind[f][kind]
    for f in names:
        p, c = space.options(configs[f], frozenset({f}))
        if pred is None or cost is None:
            pred, cost = np.zeros_like(p), np.zeros_like(c)
        rows = folds == f
        pred[rows], cost[rows] = p[rows], c[rows]
    assert pred is not None and cost is not None
    means = {k: float(np.mean([v[k] for v in found])) for k in found[0]} if found else {}
    return Searched(space, pred, cost, configs, n_trials if search else 1, means)


def inner_options(
    space: Space, config: Config, folds: np.ndarray, items: np.ndarray, outer: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Options of `items` (all outside fold `outer`), each from a fit leaving out its own fold
    and `outer`: the study's own cross-fit."""
    pred: np.ndarray | None = None
    cost: np.ndarray | None = None
    inner = folds[items]
    for g in np.unique(inner):
        excluded = frozenset({int(g)} if outer is None else {int(g), outer})
        p, c = space.options(config, excluded)
        if pred is None or cost is None:
            pred = np.zeros((len(items), p.shape[1]))
            cost = np.zeros((len(items), c.shape[1]))
        rows = inner == g
        pred[rows], cost[rows] = p[items[rows]], c[items[rows]]
    assert pred is not None and cost is not None
    return pred, cost


def _study(
    space: Space,
    judge: Judge,
    folds: np.ndarray,
    items: np.ndarray,
    outer: int | None,
    n_trials: int,
    seed: int,
) -> tuple[Config, dict[str, float], dict[Hashable, Config]]:
    """Fold `outer`'s configuration chosen among `items`, the study's values, and its choice
    restricted to each kind of configuration it tried (`Space.kind`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(STARTUP, n_trials))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    default = space.default(items)
    study.enqueue_trial(default)

    def objective(trial: optuna.Trial) -> float:
        config = space.suggest(trial, items)
        trial.set_user_attr("config", config)
        pred, cost = inner_options(space, config, folds, items, outer)
        return judge(space, config, items, pred, cost)

    study.optimize(objective, n_trials=n_trials)
    first = study.trials[0]
    base = _value(first)
    tried = [t for t in study.trials if t.value is not None]
    alternatives = []
    for alt in space.alternatives(items):
        pred, cost = inner_options(space, alt, folds, items, outer)
        alternatives.append((dict(alt), float(judge(space, alt, items, pred, cost))))

    def pick(kind: Hashable | None) -> tuple[Config, float] | None:
        """The study's choice among configurations of `kind` (None: any)."""

        def of(config: Config) -> bool:
            return kind is None or space.kind(config) == kind

        trials = [t for t in tried if of(t.user_attrs["config"])]
        alts = [a for a in alternatives if of(a[0])]
        if not trials and not alts:
            return None
        current: tuple[Config, float] | None = None
        if trials:
            best = min(trials, key=_value)
            value = _value(best)
            # The default stays unless beaten clearly: a pick among many noisy trials is
            # optimistic.
            keep = of(first.user_attrs["config"]) and value > base - DEFAULT_WITHIN * abs(base)
            chosen = first if keep else best
            current = dict(chosen.user_attrs["config"]), _value(chosen)
        # Pre-specified alternatives (a different success model): each replaces the pick only
        # when it beats it clearly, as the pick had to beat the default.
        for alt, alt_value in alts:
            if current is None or alt_value < current[1] - DEFAULT_WITHIN * abs(current[1]):
                current = alt, alt_value
        return current

    chosen = pick(None)
    assert chosen is not None
    kinds = {
        space.kind(c)
        for c in [t.user_attrs["config"] for t in tried] + [a for a, _ in alternatives]
    }
    per_kind = {k: found[0] for k in kinds if (found := pick(k)) is not None}
    best_value = min([_value(t) for t in tried] + [chosen[1]])
    return chosen[0], {"default_value": base, "best_value": best_value}, per_kind


def _value(trial: optuna.trial.FrozenTrial) -> float:
    return float(trial.value) if trial.value is not None else float("inf")
