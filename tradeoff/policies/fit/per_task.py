"""A task table chosen task by task, for requirements that hold `on every task`.

A cost-weight path moves every task at once, so under "accuracy >= 90% of baseline on every
task" it stops where the first task reaches its floor, and the other tasks save nothing. When
every clause holds per task, each task can instead be decided alone: its items' own test says
which cheaper models keep its floor.

Per task t, the models cheaper than the baseline there are tested in a fixed order that uses
none of task t's outcomes (most accurate first on the *other* tasks' training items), each at
level `level / T` for T tasks, stopping at the first that fails (fixed-sequence testing: every
model passed before it holds with probability 1 - level / T). The task goes to the cheapest
passed model, or stays on the baseline. A union bound over the T tasks keeps the whole table's
error at `level`, the error share of the path it is added as (`policies.fit.acceptance`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.task_table import TaskTablePolicy
from tradeoff.policies.fit.acceptance import constraint_bound
from tradeoff.policies.fit.candidates import Candidate
from tradeoff.policies.replay.metrics import Bootstrap
from tradeoff.policies.replay.simulate import Replay, Routes, replay, single_routes
from tradeoff.policies.replay.tasks import task_groups
from tradeoff.policies.requirement import Requirement

FAMILY = "task_table"


def applies(req: Requirement) -> bool:
    """Every clause holds per task (other clauses would need a share of the error budget)."""
    return bool(req.constraints) and all(c.per_task for c in req.constraints)


def task_floor_candidate(
    req: Requirement, train: Outcomes, base_j: int, base: Replay, level: float
) -> Candidate:
    """The task table of the module docstring, its decisions on the training items."""
    groups = task_groups(train.tasks)
    tasks = train.tasks.astype(str)
    score = np.nan_to_num(train.score[:, :, 0])
    cost = np.nan_to_num(train.cost[:, :, 0])
    clauses = [replace(c, per_task=False) for c in req.constraints]
    boot = Bootstrap.draw(1, 0, resamples=1)  # per-item metrics only: never resampled
    table: dict[str, str] = {}
    picks = np.full(train.n, base_j)
    for task, idx in groups:
        others = np.flatnonzero(tasks != task)
        accuracy = score[others].mean(axis=0) if len(others) else np.zeros(score.shape[1])
        mean_cost = cost[idx].mean(axis=0)
        cheaper = [j for j in range(len(train.models)) if mean_cost[j] < mean_cost[base_j]]
        if train.capable is not None:
            cheaper = [j for j in cheaper if train.capable[idx, j].all()]
        passed = []
        part = train.subset(idx)
        base_t = base.take(idx)
        for j in sorted(cheaper, key=lambda j: (-accuracy[j], mean_cost[j], j)):
            r = replay(part, single_routes(len(idx), j))
            if not all(
                constraint_bound(c, r, base_t, boot, level / len(groups))[0] >= 0 for c in clauses
            ):
                break  # fixed sequence: nothing after a failure
            passed.append(j)
        if passed:
            j = min(passed, key=lambda j: (mean_cost[j], -accuracy[j], j))
            picks[idx] = j
            table[task] = train.models[j]
    default = train.models[base_j]
    full = {t: table.get(t, default) for t, _ in groups}
    return Candidate(
        FAMILY,
        f"task_table [each task alone: {len(table)} of {len(groups)} tasks on a cheaper model]",
        Routes(picks.reshape(-1, 1), np.ones(train.n, dtype=int)),
        lambda: _policy(full, default),
    )


def _policy(table: dict[str, str], default: str) -> Policy:
    return TaskTablePolicy(table, default)
