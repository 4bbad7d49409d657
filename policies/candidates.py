"""Candidate policies of the search, evaluated fast on any item subset (`Part`).

A candidate is a family plus its searched parameters, already fitted on the fitting items. It
turns into `Routes` for a part with array operations (the learned family's predictions for a
part are computed once), and into a real `Policy` for the artifact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from policies.base import Policy
from policies.best_of_k import BestOfKPolicy
from policies.cascade import CascadePolicy
from policies.data import Outcomes
from policies.learned import LearnedPolicy, choose, scale_costs
from policies.metrics import Bootstrap
from policies.replay import Replay, Routes, VerdictSource, replay, single_routes
from policies.single import SinglePolicy
from policies.task_table import TaskTablePolicy

# Simpler families win ties: they are easier to trust and to serve.
SIMPLICITY = {"single": 0, "task_table": 1, "cascade": 2, "best_of_k": 3, "learned": 4}


@dataclass
class Part:
    """One item subset with what evaluating candidates on it needs."""

    outcomes: Outcomes
    boot: Bootstrap
    verdicts: VerdictSource | None = None
    predicted: np.ndarray | None = None  # learned predictions, (n, m)
    _replays: dict[str, Replay] = field(default_factory=dict)

    @cached_property
    def cost_unit(self) -> float:
        """The dearest model's mean cost per request here; cost objectives and margins use it."""
        return max(float(self.outcomes.cost[:, :, 0].mean(axis=0).max()), 1e-12)

    def replay(self, cand: Candidate) -> Replay:
        if cand.key not in self._replays:
            self._replays[cand.key] = replay(self.outcomes, cand.routes(self), self.verdicts)
        return self._replays[cand.key]


@dataclass(frozen=True)
class Candidate:
    family: str
    params: dict[str, Any]  # indices into `models`, search parameters
    models: tuple[str, ...]
    learned: LearnedPolicy | None = None

    @property
    def key(self) -> str:
        return self.family + json.dumps(self.params, sort_keys=True)

    def routes(self, part: Part) -> Routes:
        n = part.outcomes.n
        p = self.params
        ones = np.ones(n, dtype=int)
        if self.family == "single":
            return single_routes(n, p["model"])
        if self.family == "task_table":
            table = p["table"]
            picks = [table.get(str(t), p["default"]) for t in part.outcomes.tasks]
            return Routes(np.array(picks, dtype=int).reshape(n, 1), ones)
        if self.family == "learned":
            assert part.predicted is not None and self.learned is not None
            scaled = self.learned.scaled_costs
            chosen = choose(part.predicted, scaled, p["rule"], p["threshold"], p["lam"])
            return Routes(chosen.reshape(n, 1), ones)
        if self.family == "cascade":
            return Routes(np.tile(np.array(p["chain"]), (n, 1)), ones, p["verifier"])
        if self.family == "best_of_k":
            chain = [p["model"], *p["fallback"]]
            return Routes(np.tile(np.array(chain), (n, 1)), ones * p["k"], p["verifier"])
        raise ValueError(self.family)

    def policy(self) -> Policy:
        p, names = self.params, self.models
        if self.family == "single":
            return SinglePolicy(names[p["model"]])
        if self.family == "task_table":
            table = {task: names[j] for task, j in p["table"].items()}
            return TaskTablePolicy(table, names[p["default"]])
        if self.family == "learned":
            assert self.learned is not None
            params = self.learned.to_params() | {
                "rule": p["rule"],
                "threshold": p["threshold"],
                "lam": p["lam"],
            }
            return LearnedPolicy.from_params(params)
        if self.family == "cascade":
            return CascadePolicy([names[j] for j in p["chain"]], p["verifier"])
        if self.family == "best_of_k":
            fallback = [names[j] for j in p["fallback"]]
            return BestOfKPolicy(names[p["model"]], p["k"], p["verifier"], fallback)
        raise ValueError(self.family)

    def describe(self) -> str:
        names = self.models
        p = self.params
        if self.family == "single":
            return f"single {names[p['model']]}"
        if self.family == "task_table":
            return f"task_table ({len(set(p['table'].values()) | {p['default']})} models)"
        if self.family == "learned":
            knob = (
                f"threshold {p['threshold']:.2f}"
                if p["rule"] == "threshold"
                else f"lambda {p['lam']:.3g}"
            )
            return f"learned ({p['rule']}, {knob})"
        if self.family == "cascade":
            return f"cascade {' -> '.join(names[j] for j in p['chain'])} ({p['verifier']})"
        return f"best_of_k {p['k']}x {names[p['model']]} ({p['verifier']})"


@dataclass(frozen=True)
class TaskStats:
    """Per-task score sums of the fitting items, computed once for every task_table trial."""

    tasks: tuple[str, ...]
    counts: np.ndarray  # (T,)
    sums: np.ndarray  # (T, m)
    overall: np.ndarray  # (m,)
    servable: np.ndarray | None = None  # (T, m) the model can serve every item of the task

    @classmethod
    def of(cls, outcomes: Outcomes) -> TaskStats:
        names, inverse = np.unique(outcomes.tasks.astype(str), return_inverse=True)
        score = outcomes.score[:, :, 0]
        sums = np.zeros((len(names), score.shape[1]))
        np.add.at(sums, inverse, score)
        counts = np.bincount(inverse, minlength=len(names))
        servable = None
        if outcomes.capable is not None:
            servable = np.ones_like(sums, dtype=bool)
            np.logical_and.at(servable, inverse, outcomes.capable)
        return cls(tuple(str(t) for t in names), counts, sums, score.mean(axis=0), servable)


def task_table_params(
    stats: TaskStats, costs: np.ndarray, lam: float, prior: float = 10.0
) -> dict[str, Any]:
    """Per task, the model maximising (shrunk accuracy - lam x scaled cost).

    Task accuracies are shrunk toward the model's overall accuracy with `prior` pseudo-items,
    so a task seen a handful of times does not flip to a model on noise.
    """
    scaled = scale_costs(costs)
    default = int(np.argmax(stats.overall - lam * scaled))
    acc = (stats.sums + prior * stats.overall) / (stats.counts[:, None] + prior)
    utility = acc - lam * scaled[None, :]
    if stats.servable is not None:  # a task's items need what some models lack: not those
        usable = stats.servable.any(axis=1, keepdims=True)
        utility = np.where(stats.servable | ~usable, utility, -np.inf)
    picks = np.argmax(utility, axis=1)
    return {
        "table": {t: int(j) for t, j in zip(stats.tasks, picks, strict=True)},
        "default": default,
    }
