"""`single`: every request goes to one model (how every baseline is expressed)."""

from __future__ import annotations

from typing import Any

from tradeoff.policies.errors import PolicyParamsError
from tradeoff.policies.families.base import (
    Plan,
    Policy,
    RouteRequest,
    register_family,
    require_models,
)


@register_family
class SinglePolicy(Policy):
    """Route everything to `model`. Params: `{"model": name}`."""

    family = "single"

    def __init__(self, model: str) -> None:
        (self.model,) = require_models(self.family, [model])

    @property
    def models(self) -> tuple[str, ...]:
        return (self.model,)

    def plan(self, request: RouteRequest) -> Plan:
        return Plan(models=(self.model,), reason=f"single model {self.model}")

    def to_params(self) -> dict[str, Any]:
        return {"model": self.model}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SinglePolicy:
        model = params.get("model")
        if not isinstance(model, str):
            raise PolicyParamsError('single policy needs params {"model": NAME}')
        return cls(model)
