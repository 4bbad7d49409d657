"""`best_of_k`: k samples of a cheap model, keep one the verifier accepts, else escalate.

pass@k economics: several cheap tries can beat one expensive call. The k samples are requested
together (cost: all k; latency: the slowest); the fallback models get one call each.
Params: `{"model": cheap, "k": k, "verifier": name, "fallback": [models]}`; a fitted one with one
fallback may add `"gate"` (`policies.families.gate`): per request, one call of the cheap model, the k
samples and escalation, or the fallback alone, by predicted gain per dollar.
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
class BestOfKPolicy(Policy):
    family = "best_of_k"

    def __init__(
        self, model: str, k: int, verifier: str, fallback: list[str], gate: Gate | None = None
    ) -> None:
        self._models = require_models(self.family, [model, *fallback])
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise PolicyParamsError(f"best_of_k policy: k must be an integer >= 1, got {k!r}")
        if not isinstance(verifier, str) or not verifier:
            raise PolicyParamsError("best_of_k policy needs a verifier (a reference-free grader)")
        if gate is not None and len(self._models) != 2:
            raise PolicyParamsError("best_of_k policy: a gate needs exactly one fallback model")
        self.model, self.k, self.verifier, self.fallback = model, k, verifier, list(fallback)
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
            samples=self.k,
            reason=f"{self.k} samples of {self.model}, escalate if {self.verifier} rejects all",
        )

    def to_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "k": self.k,
            "verifier": self.verifier,
            "fallback": self.fallback,
        }
        if self.gate is not None:
            params["gate"] = self.gate.to_params()
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> BestOfKPolicy:
        model, verifier = params.get("model"), params.get("verifier")
        k, fallback = params.get("k", 1), params.get("fallback", [])
        if (
            not isinstance(model, str)
            or not isinstance(verifier, str)
            or not isinstance(fallback, list)
        ):
            raise PolicyParamsError(
                'best_of_k policy needs params {"model": NAME, "k": K, "verifier": GRADER, '
                '"fallback": [NAME, ...]}'
            )
        gate = None
        if "gate" in params:
            if len(fallback) != 1 or not isinstance(k, int):
                raise PolicyParamsError("best_of_k policy: a gate needs exactly one fallback model")
            gate = Gate.from_params((model, str(fallback[0])), k, params["gate"])
        return cls(model, k, verifier, fallback, gate)
