"""`task_table`: one model per task (model speciation), a default for unknown or missing tasks."""

from __future__ import annotations

from typing import Any

from policies.base import Plan, Policy, RouteRequest, register_family, require_models
from policies.errors import PolicyParamsError


@register_family
class TaskTablePolicy(Policy):
    """Params: `{"table": {task: model}, "default": model}`."""

    family = "task_table"

    def __init__(self, table: dict[str, str], default: str) -> None:
        require_models(self.family, [default])
        for task, model in table.items():
            if not isinstance(task, str) or not isinstance(model, str) or not model:
                raise PolicyParamsError("task_table policy: table must map task names to models")
        self.table = dict(sorted(table.items()))
        self.default = default

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted({self.default, *self.table.values()}))

    def plan(self, request: RouteRequest) -> Plan:
        model = self.table.get(request.task) if request.task is not None else None
        if model is None:
            return Plan(models=(self.default,), reason="default model (task not in table)")
        return Plan(models=(model,), reason=f"task {request.task} -> {model}")

    def to_params(self) -> dict[str, Any]:
        return {"table": dict(self.table), "default": self.default}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TaskTablePolicy:
        table, default = params.get("table", {}), params.get("default")
        if not isinstance(table, dict) or not isinstance(default, str):
            raise PolicyParamsError(
                'task_table policy needs params {"table": {task: model}, "default": model}'
            )
        return cls(table, default)
