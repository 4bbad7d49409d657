"""The Optuna search over families and their parameters, on the fitting items only.

Each trial builds a candidate, replays it on the fitting items and scores it: the objective
(e.g. mean cost, scaled) plus a penalty for every constraint whose one-sided 95% bootstrap lower
bound is violated *on the fitting items*. The penalty steers the sampler toward the feasible
region; feasibility that counts is decided later on the validation items.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import optuna

from policies.candidates import Candidate, Part, TaskStats, task_table_params
from policies.learned import LearnedPolicy
from policies.metrics import constraint_margin, metric_point
from policies.replay import Replay
from policies.requirement import Constraint, Requirement

PENALTY = 10.0


@dataclass(frozen=True)
class SearchSpace:
    models: tuple[str, ...]
    costs: np.ndarray  # (m,) mean cost per request on the fitting items
    families: tuple[str, ...]
    verifiers: tuple[str, ...] = ()
    max_samples: int = 1
    learned: LearnedPolicy | None = None


def constraint_scale(c: Constraint, part: Part, base: Replay) -> float:
    """A natural unit for a constraint's margin, so penalties of different metrics compare."""
    if c.metric == "cost":
        return part.cost_unit
    if c.metric == "p95_latency":
        return max(c.value if not c.relative else metric_point("p95_latency", base), 1.0)
    return 1.0


def objective_value(req: Requirement, r: Replay, part: Part) -> float:
    """Lower is better; scaled like the penalties."""
    metric = req.objective.metric
    value = metric_point(metric, r)
    if metric == "cost":
        value /= part.cost_unit
    elif metric == "p95_latency":
        value /= 1000.0
    return value if req.objective.direction == "minimize" else -value


def score_candidate(
    req: Requirement, cand: Candidate, part: Part, base: Replay
) -> tuple[float, float]:
    """(objective + penalty, worst scaled lower-bound margin) of a candidate on a part."""
    r = part.replay(cand)
    worst = np.inf
    for c in req.constraints:
        margin = constraint_margin(c, r, base, part.boot) / constraint_scale(c, part, base)
        worst = min(worst, margin)
    value = objective_value(req, r, part)
    if worst < 0:
        value += PENALTY - worst
    if r.unservable is not None and r.unservable.any():
        value += PENALTY  # leaves items to models that cannot serve them
    return value, float(worst)


def _suggest(trial: optuna.Trial, space: SearchSpace, stats: TaskStats) -> Candidate:
    m = len(space.models)
    family = trial.suggest_categorical("family", list(space.families))
    order = [int(j) for j in np.argsort(space.costs, kind="stable")]
    if family == "single":
        params: dict = {"model": trial.suggest_int("model", 0, m - 1)}
    elif family == "task_table":
        lam = trial.suggest_float("tt_lam", 1e-3, 3.0, log=True)
        params = task_table_params(stats, space.costs, lam)
    elif family == "learned":
        rule = trial.suggest_categorical("rule", ["threshold", "utility"])
        params = {"rule": rule, "threshold": 0.5, "lam": 0.0}
        if rule == "threshold":
            params["threshold"] = round(trial.suggest_float("threshold", 0.0, 1.0), 4)
        else:
            params["lam"] = round(trial.suggest_float("lam", 1e-3, 3.0, log=True), 5)
    else:
        pairs = [f"{a}>{b}" for a, b in itertools.combinations(order, 2)]
        cheap, strong = (int(x) for x in trial.suggest_categorical("pair", pairs).split(">"))
        verifier = trial.suggest_categorical("verifier", list(space.verifiers))
        if family == "cascade":
            params = {"chain": [cheap, strong], "verifier": verifier}
        else:
            k = trial.suggest_int("k", 2, max(2, space.max_samples))
            params = {"model": cheap, "k": k, "verifier": verifier, "fallback": [strong]}
    return Candidate(family, params, space.models, space.learned if family == "learned" else None)


def search(
    req: Requirement, space: SearchSpace, fit: Part, base: Replay, n_trials: int, seed: int
) -> list[Candidate]:
    """Every distinct candidate the search tried, singles always included."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(20, n_trials))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    tried: dict[str, Candidate] = {}
    stats = TaskStats.of(fit.outcomes)
    # Seed the search with every single model and one default per family.
    for j in range(len(space.models) if "single" in space.families else 0):
        study.enqueue_trial({"family": "single", "model": j})
    if "task_table" in space.families:
        study.enqueue_trial({"family": "task_table", "tt_lam": 0.05})
    if "learned" in space.families:
        study.enqueue_trial({"family": "learned", "rule": "utility", "lam": 0.05})

    def objective(trial: optuna.Trial) -> float:
        cand = _suggest(trial, space, stats)
        tried.setdefault(cand.key, cand)
        return score_candidate(req, cand, fit, base)[0]

    study.optimize(objective, n_trials=max(n_trials, len(space.models) + 2))
    return list(tried.values())
