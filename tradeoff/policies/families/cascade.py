"""`cascade`: try models in order, escalate when a reference-free verifier rejects the answer.

Cost counts every attempt. Params: `{"models": [cheap, ..., strong], "verifier": name}`; a fitted
two-model cascade may add `"gate"` (`policies.families.gate`): per request, the cheap model alone, the
chain, or the strong model alone, whichever the predicted gain per dollar favours.
"""

from __future__ import annotations

from typing import Any

from tradeoff.policies.errors import PolicyParamsError
from tradeoff.policies.families import verifiers  # noqa: F401 - registers the answer_parses verifier
from tradeoff.policies.families.base import (
    Plan,
    Policy,
    RouteRequest,
    register_family,
    require_models,
)
from tradeoff.policies.families.gate import CHAIN, CHEAP, Gate


@register_family
class CascadePolicy(Policy):
    family = "cascade"

    def __init__(self, models: list[str], verifier: str, gate: Gate | None = None) -> None:
        self._models = require_models(self.family, models)
        if not isinstance(verifier, str) or not verifier:
            raise PolicyParamsError("cascade policy needs a verifier (a reference-free grader)")
        if gate is not None and len(self._models) != 2:
            raise PolicyParamsError("cascade policy: a gate needs exactly two models")
        self.verifier = verifier
        self.gate = gate

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def plan(self, request: RouteRequest) -> Plan:
        option = CHAIN if self.gate is None else self.gate.choose(request.prompt, request.task)
        if option != CHAIN:
            model = self._models[0 if option == CHEAP else -1]
            return Plan(models=(model,), reason=f"gate: {model} alone (gain per dollar)")
        return Plan(
            models=self._models,
            verifier=self.verifier,
            reason=f"cascade {' -> '.join(self._models)} while {self.verifier} rejects",
        )

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"models": list(self._models), "verifier": self.verifier}
        if self.gate is not None:
            params["gate"] = self.gate.to_params()
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CascadePolicy:
        models, verifier = params.get("models"), params.get("verifier")
        if not isinstance(models, list) or not isinstance(verifier, str):
            raise PolicyParamsError(
                'cascade policy needs params {"models": [NAME, ...], "verifier": GRADER}'
            )
        gate = None
        if "gate" in params:
            if len(models) != 2:
                raise PolicyParamsError("cascade policy: a gate needs exactly two models")
            gate = Gate.from_params((str(models[0]), str(models[1])), 1, params["gate"])
        return cls(models, verifier, gate)
