"""`task_table`: route by task (model speciation), optionally by the request's cost within a task.

Two forms of params:

- static (hand-written or older files): `{"table": {task: model}, "default": model}`, one model
  per task, `default` for unknown or missing tasks;
- per request (what `tradeoff fit` produces): `{"models": [...], "scores": {task: [score per
  model]}, "default_scores": [...], "cost_model": {...}, "lam": x, "cost_unit": usd}`. Each
  model's expected score on the task (shrunk toward its overall score for rare tasks) against the
  request's predicted cost, by the gain-per-dollar rule (`policies.fit.paths`): items of one task
  differ in length, so a long one may go to a cheaper model than a short one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradeoff.policies.errors import PolicyParamsError
from tradeoff.policies.families.base import (
    Plan,
    Policy,
    RouteRequest,
    register_family,
    require_models,
)
from tradeoff.policies.families.costs import CostModel
from tradeoff.policies.fit.paths import TIE


@register_family
class TaskTablePolicy(Policy):
    family = "task_table"

    def __init__(self, table: dict[str, str], default: str) -> None:
        require_models(self.family, [default])
        for task, model in table.items():
            if not isinstance(task, str) or not isinstance(model, str) or not model:
                raise PolicyParamsError("task_table policy: table must map task names to models")
        self.table = dict(sorted(table.items()))
        self.default = default
        self.per_request: PerRequestTable | None = None

    @classmethod
    def by_request(
        cls,
        models: list[str],
        scores: dict[str, list[float]],
        default_scores: list[float],
        cost_model: CostModel,
        lam: float,
        cost_unit: float,
    ) -> TaskTablePolicy:
        names = require_models(cls.family, models)
        policy = cls({}, names[0])
        policy.per_request = PerRequestTable(
            names, scores, default_scores, cost_model, lam, cost_unit
        )
        return policy

    @property
    def models(self) -> tuple[str, ...]:
        if self.per_request is not None:
            return self.per_request.models
        return tuple(sorted({self.default, *self.table.values()}))

    def plan(self, request: RouteRequest) -> Plan:
        if self.per_request is not None:
            return self.per_request.plan(request)
        model = self.table.get(request.task) if request.task is not None else None
        if model is None:
            return Plan(models=(self.default,), reason="default model (task not in table)")
        return Plan(models=(model,), reason=f"task {request.task} -> {model}")

    def plan_many(self, requests: list[RouteRequest]) -> list[Plan]:
        if self.per_request is not None:
            return self.per_request.plan_many(requests)
        return [self.plan(r) for r in requests]

    def to_params(self) -> dict[str, Any]:
        if self.per_request is not None:
            return self.per_request.to_params()
        return {"table": dict(self.table), "default": self.default}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TaskTablePolicy:
        if "scores" in params:
            return cls._from_per_request_params(params)
        table, default = params.get("table", {}), params.get("default")
        if not isinstance(table, dict) or not isinstance(default, str):
            raise PolicyParamsError(
                'task_table policy needs params {"table": {task: model}, "default": model}'
            )
        return cls(table, default)

    @classmethod
    def _from_per_request_params(cls, params: dict[str, Any]) -> TaskTablePolicy:
        try:
            models = [str(m) for m in params["models"]]
            scores = {str(t): [float(x) for x in row] for t, row in params["scores"].items()}
            return cls.by_request(
                models,
                scores,
                [float(x) for x in params["default_scores"]],
                CostModel.from_params(models, params["cost_model"]),
                float(params["lam"]),
                float(params["cost_unit"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PolicyParamsError(
                f"task_table policy: per-request params are incomplete or malformed ({exc}); "
                "refit it"
            ) from None


class PerRequestTable:
    """The per-request form's state and decisions (see the module docstring)."""

    def __init__(
        self,
        models: tuple[str, ...],
        scores: dict[str, list[float]],
        default_scores: list[float],
        cost_model: CostModel,
        lam: float,
        cost_unit: float,
    ) -> None:
        m = len(models)
        if len(default_scores) != m or any(len(row) != m for row in scores.values()):
            raise PolicyParamsError(f"task_table policy: every score row needs {m} values; refit")
        if not cost_unit > 0:
            raise PolicyParamsError("task_table policy: cost_unit must be > 0; refit")
        self.models = models
        self.scores = {t: np.asarray(row, dtype=float) for t, row in sorted(scores.items())}
        self.default_scores = np.asarray(default_scores, dtype=float)
        self.cost_model, self.lam, self.cost_unit = cost_model, float(lam), float(cost_unit)

    def _row(self, task: str | None) -> np.ndarray:
        return (
            self.scores.get(task, self.default_scores) if task is not None else self.default_scores
        )

    def plan(self, request: RouteRequest) -> Plan:
        scores = self._row(request.task)
        cost = self.cost_model.one(request.prompt, request.task)
        return self._plan(
            int(np.argmax(scores - (self.lam + TIE) * cost / self.cost_unit)), request
        )

    def plan_many(self, requests: list[RouteRequest]) -> list[Plan]:
        scores = np.array([self._row(r.task) for r in requests]).reshape(len(requests), -1)
        cost = self.cost_model.predict([r.prompt for r in requests], [r.task for r in requests])
        picks = np.argmax(scores - (self.lam + TIE) * cost / self.cost_unit, axis=1)
        return [self._plan(int(j), r) for j, r in zip(picks, requests, strict=True)]

    def _plan(self, j: int, request: RouteRequest) -> Plan:
        known = request.task is not None and request.task in self.scores
        where = f"task {request.task}" if known else "unknown task"
        return Plan(
            models=(self.models[j],), reason=f"{where} -> {self.models[j]} (gain per dollar)"
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "scores": {t: [float(x) for x in row] for t, row in self.scores.items()},
            "default_scores": [float(x) for x in self.default_scores],
            "cost_model": self.cost_model.to_params(),
            "lam": self.lam,
            "cost_unit": self.cost_unit,
        }
