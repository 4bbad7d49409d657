"""`cascade`: try models in order, escalate when a reference-free verifier rejects the answer.

Cost counts every attempt. Params: `{"models": [cheap, ..., strong], "verifier": name}`.
"""

from __future__ import annotations

from typing import Any

from policies import verifiers  # noqa: F401 - registers the answer_parses verifier
from policies.base import Plan, Policy, RouteRequest, register_family, require_models
from policies.errors import PolicyParamsError


@register_family
class CascadePolicy(Policy):
    family = "cascade"

    def __init__(self, models: list[str], verifier: str) -> None:
        self._models = require_models(self.family, models)
        if not isinstance(verifier, str) or not verifier:
            raise PolicyParamsError("cascade policy needs a verifier (a reference-free grader)")
        self.verifier = verifier

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def plan(self, request: RouteRequest) -> Plan:
        return Plan(
            models=self._models,
            verifier=self.verifier,
            reason=f"cascade {' -> '.join(self._models)} while {self.verifier} rejects",
        )

    def to_params(self) -> dict[str, Any]:
        return {"models": list(self._models), "verifier": self.verifier}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CascadePolicy:
        models, verifier = params.get("models"), params.get("verifier")
        if not isinstance(models, list) or not isinstance(verifier, str):
            raise PolicyParamsError(
                'cascade policy needs params {"models": [NAME, ...], "verifier": GRADER}'
            )
        return cls(models, verifier)
