"""Per-request cost: what one request will cost on each model, predicted before routing.

The money is per request, not per model: a long prompt costs more everywhere, and a model that
answers at length costs more on the tasks where it does. Per model,

    predicted cost = per_char x len(prompt) + base[task]

`per_char` (USD per character of the flattened prompt, so the input side: known before the
call) is the slope of a within-task regression of recorded cost on prompt length; `base[task]`
is the mean of what remains (mostly the output tokens, typical of the model and the task),
shrunk toward the model's overall mean for rarely seen tasks (`policies.families.shrink`); an unknown or
missing task gets the overall mean. Fitting and `plan()` at serve time measure the prompt the
same way (`len` of the text the policy sees), so the prediction at serve time is the one the
fit relied on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeoff.policies.errors import PolicyParamsError
from tradeoff.policies.families.shrink import group_index, shrunk_means


@dataclass(frozen=True, eq=False)
class CostModel:
    models: tuple[str, ...]
    per_char: np.ndarray  # (m,) USD per prompt character
    base: np.ndarray  # (m,) USD per request beyond the prompt, task unknown
    tasks: tuple[str, ...]
    task_base: np.ndarray  # (T, m)

    def predict(self, prompts: Sequence[str], tasks: Sequence[str | None]) -> np.ndarray:
        """Predicted USD per request, (n, m)."""
        lengths = np.array([len(p) for p in prompts], dtype=float)
        idx = group_index(
            np.array([t if t is not None else "" for t in tasks], dtype=object), self.tasks
        )
        rows = (
            self.task_base[np.maximum(idx, 0)]
            if len(self.tasks)
            else np.zeros((len(idx), len(self.models)))
        )
        base = np.where((idx >= 0)[:, None], rows, self.base[None, :])
        return np.maximum(lengths[:, None] * self.per_char[None, :] + base, 0.0)

    def one(self, prompt: str, task: str | None) -> np.ndarray:
        """Predicted USD per request on each model, (m,): the serve-time path."""
        row = self._task_rows.get(task, self.base) if task is not None else self.base
        return np.maximum(len(prompt) * self.per_char + row, 0.0)

    @property
    def _task_rows(self) -> dict[str, np.ndarray]:
        cached = self.__dict__.get("_rows")
        if cached is None:
            cached = {t: self.task_base[i] for i, t in enumerate(self.tasks)}
            object.__setattr__(self, "_rows", cached)
        return cached

    def select(self, models: Sequence[str]) -> CostModel:
        """The same predictions for a subset of the models (smaller params)."""
        cols = [self.models.index(m) for m in models]
        return CostModel(
            tuple(models), self.per_char[cols], self.base[cols], self.tasks, self.task_base[:, cols]
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "per_char": [float(x) for x in self.per_char],
            "base": [float(x) for x in self.base],
            "task_base": {
                t: [float(x) for x in row]
                for t, row in zip(self.tasks, self.task_base, strict=True)
            },
        }

    @classmethod
    def from_params(cls, models: Sequence[str], params: Any) -> CostModel:
        m = len(models)
        try:
            per_char = np.asarray(params["per_char"], dtype=float)
            base = np.asarray(params["base"], dtype=float)
            table = dict(params.get("task_base", {}))
            tasks = tuple(str(t) for t in table)
            task_base = np.asarray([table[t] for t in tasks], dtype=float).reshape(len(tasks), m)
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyParamsError(f"cost model is malformed ({exc}); refit the policy") from None
        if per_char.shape != (m,) or base.shape != (m,):
            raise PolicyParamsError(f"cost model needs {m} values per field; refit the policy")
        return cls(tuple(models), per_char, base, tasks, task_base)


def fit_cost_model(
    prompts: Sequence[str],
    tasks: Sequence[str],
    cost: np.ndarray,
    models: Sequence[str],
    per_request: bool = True,
) -> CostModel:
    """Fit on recorded costs `cost` (n, m): mean USD per call of each item on each model.

    `per_request=False` predicts each model's mean cost for every request (the model-level
    rule this replaces; benchmarks compare the two)."""
    if not per_request:
        mean = (
            np.nanmean(np.asarray(cost, dtype=float), axis=0)
            if len(cost)
            else np.zeros(len(models))
        )
        m = len(models)
        return CostModel(tuple(models), np.zeros(m), mean, (), np.zeros((0, m)))
    names = tuple(sorted({str(t) for t in tasks}))
    groups = group_index(np.asarray(tasks, dtype=object), names)
    x = np.array([len(p) for p in prompts], dtype=float)
    y = np.nan_to_num(np.asarray(cost, dtype=float))
    # Within-task slope: lengths and costs centred on their task means, so a task that is both
    # long and verbose does not pass its output cost off as a per-character price.
    counts = np.maximum(np.bincount(groups, minlength=len(names)), 1)
    x_mean = np.bincount(groups, weights=x, minlength=len(names)) / counts
    y_sum = np.zeros((len(names), y.shape[1]))
    np.add.at(y_sum, groups, y)
    xc = x - x_mean[groups]
    yc = y - (y_sum / counts[:, None])[groups]
    denom = float(xc @ xc)
    per_char = np.maximum(xc @ yc / denom, 0.0) if denom > 0 else np.zeros(y.shape[1])
    rest = y - x[:, None] * per_char[None, :]
    means = shrunk_means(groups, rest, len(names))
    return CostModel(tuple(models), per_char, means.overall, names, means.table)


def average_cost_models(models: Sequence[CostModel]) -> CostModel:
    """One cost model predicting the average of `models`' predictions (each is linear in its
    params; a task one of them never saw is predicted by its overall row, as it would be)."""
    tasks = tuple(sorted({t for m in models for t in m.tasks}))
    rows = [
        np.array([m.task_base[m.tasks.index(t)] if t in m.tasks else m.base for t in tasks])
        for m in models
    ]
    width = len(models[0].models)
    return CostModel(
        models[0].models,
        np.mean([m.per_char for m in models], axis=0),
        np.mean([m.base for m in models], axis=0),
        tasks,
        np.mean(rows, axis=0).reshape(len(tasks), width),
    )
