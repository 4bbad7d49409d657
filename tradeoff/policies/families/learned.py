"""`learned`: a per-prompt router. Predict each model's success, then pick by a fitted rule.

Predictors: one linear model per candidate from `PromptFeatures` (hashed words, task, length;
optionally a sentence embedding, `embedding_model`) to the recorded score, with an identity link (ridge) or a logistic one (calibrated
probabilities). Rules:

- `per_request` (what `tradeoff fit` produces): the gain-per-dollar rule of `policies.fit.paths`,
  predicted score minus `lam` x the request's predicted cost (`policies.families.costs`, from the prompt's
  length and task, the same at serve time as when fitting) over `cost_unit`, plus `bonus` on the
  `anchor` model's predicted score (the baseline, on the anchored stretch of the fit's paths);
- `threshold` (older files): the cheapest model whose predicted score clears `threshold`, else
  the model with the best predicted score;
- `utility` (older files): the best predicted score minus `lam` x the model's mean cost (scaled
  so the dearest model is 1).

The fitted coefficients live in the params as base64 float32 with a sha256 check, so the
artifact alone rebuilds the router with no pickle and no network.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
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
from tradeoff.policies.families.features import N_FEATURES, PromptFeatures
from tradeoff.policies.fit.paths import TIE

RULES = ("threshold", "utility", "per_request")
LINKS = ("identity", "logistic")


def apply_link(z: np.ndarray, link: str) -> np.ndarray:
    """Linear scores to predicted success: as is (ridge) or through the logistic function."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) if link == "logistic" else z


def choose(
    predicted: np.ndarray, costs: np.ndarray, rule: str, threshold: float, lam: float
) -> np.ndarray:
    """Model index per row of `predicted` (n, m) under a rule; `costs` (m,) scaled to max 1."""
    if rule == "utility":
        return np.argmax(predicted - lam * costs[None, :], axis=1)
    order = np.argsort(costs, kind="stable")
    clears = predicted[:, order] >= threshold
    first = order[np.argmax(clears, axis=1)]
    return np.where(clears.any(axis=1), first, np.argmax(predicted, axis=1))


def scale_costs(costs: np.ndarray) -> np.ndarray:
    """Costs divided by the dearest one (all zeros when every model is free)."""
    top = costs.max()
    return costs / top if top > 0 else np.zeros(len(costs))


def encode_array(array: np.ndarray) -> dict[str, Any]:
    raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return {
        "shape": list(array.shape),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "data": base64.b64encode(raw).decode(),
    }


def decode_array(doc: Any) -> np.ndarray:
    try:
        raw = base64.b64decode(doc["data"], validate=True)
        shape = tuple(int(d) for d in doc["shape"])
        digest = doc["sha256"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyParamsError(f"learned policy: coefficients are malformed ({exc})") from None
    if hashlib.sha256(raw).hexdigest() != digest:
        raise PolicyParamsError("learned policy: coefficients fail their sha256 check; refit")
    array = np.frombuffer(raw, dtype="<f4")
    if array.size != int(np.prod(shape)):
        raise PolicyParamsError("learned policy: coefficients do not match their shape; refit")
    return array.reshape(shape).astype(np.float64)


@register_family
class LearnedPolicy(Policy):
    family = "learned"

    def __init__(
        self,
        models: list[str],
        costs: list[float],
        coef: np.ndarray,
        intercept: np.ndarray,
        tasks: list[str],
        rule: str = "threshold",
        threshold: float = 0.5,
        lam: float = 0.0,
        n_features: int = N_FEATURES,
        link: str = "identity",
        cost_model: CostModel | None = None,
        cost_unit: float = 1.0,
        embedding_model: str | None = None,
        anchor: str | None = None,
        bonus: float = 0.0,
    ) -> None:
        self._models = require_models(self.family, models)
        self.features = PromptFeatures(tasks, n_features, embedding_model)
        m, width = len(self._models), self.features.width
        if rule not in RULES:
            raise PolicyParamsError(f"learned policy: rule must be one of {RULES}, got {rule!r}")
        if link not in LINKS:
            raise PolicyParamsError(f"learned policy: link must be one of {LINKS}, got {link!r}")
        if rule == "per_request" and (cost_model is None or not cost_unit > 0):
            raise PolicyParamsError("learned policy: the per_request rule needs a cost model")
        if len(costs) != m or coef.shape != (m, width) or intercept.shape != (m,):
            raise PolicyParamsError(
                f"learned policy: expected {m} costs, coef {m}x{width}, {m} intercepts; refit"
            )
        self.costs = np.asarray(costs, dtype=float)
        self.scaled_costs = scale_costs(self.costs)
        # The params keep float32 coefficients; hold exactly those, so a policy predicts the same
        # before and after a save (the fit validates the policy that is served).
        self.coef = np.asarray(coef, dtype="<f4").astype(np.float64)
        self.intercept = intercept
        self.rule, self.threshold, self.lam = rule, float(threshold), float(lam)
        self.link, self.cost_model, self.cost_unit = link, cost_model, float(cost_unit)
        if anchor is not None and anchor not in self._models:
            raise PolicyParamsError(f"learned policy: anchor {anchor!r} is not one of its models")
        self.anchor = None if anchor is None else self._models.index(anchor)
        self.bonus = float(bonus)

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def predict(self, prompts: Sequence[str], tasks: Sequence[str | None]) -> np.ndarray:
        """Predicted score per prompt and model, (n, m)."""
        x = self.features.transform(prompts, tasks)
        return apply_link(np.asarray(x @ self.coef.T) + self.intercept[None, :], self.link)

    def plan(self, request: RouteRequest) -> Plan:
        cols, vals = self.features.one(request.prompt, request.task)
        predicted = apply_link(self.coef[:, cols] @ vals + self.intercept, self.link)
        if self.rule == "per_request":
            assert self.cost_model is not None
            cost = self.cost_model.one(request.prompt, request.task)
            j = int(np.argmax(self._utility(predicted[None, :], cost[None, :])[0]))
        else:
            j = int(
                choose(predicted[None, :], self.scaled_costs, self.rule, self.threshold, self.lam)[
                    0
                ]
            )
        return self._plan(j, float(predicted[j]))

    def plan_many(self, requests: list[RouteRequest]) -> list[Plan]:
        prompts, tasks = [r.prompt for r in requests], [r.task for r in requests]
        predicted = self.predict(prompts, tasks)
        if self.rule == "per_request":
            assert self.cost_model is not None
            cost = self.cost_model.predict(prompts, tasks)
            picks = np.argmax(self._utility(predicted, cost), axis=1)
        else:
            picks = choose(predicted, self.scaled_costs, self.rule, self.threshold, self.lam)
        return [self._plan(int(j), float(predicted[i, j])) for i, j in enumerate(picks)]

    def _utility(self, predicted: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """(n, m) what the per_request rule maximises (`policies.fit.paths.utility`)."""
        u = predicted - (self.lam + TIE) * cost / self.cost_unit
        if self.anchor is not None and self.bonus:
            u[:, self.anchor] += self.bonus
        return u

    def _plan(self, j: int, predicted: float) -> Plan:
        return Plan(
            models=(self._models[j],),
            reason=f"learned {self.rule}: predicted score {predicted:.2f}",
        )

    def to_params(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.link != "identity":
            extra["link"] = self.link
        if self.cost_model is not None:
            extra["cost_model"] = self.cost_model.to_params()
            extra["cost_unit"] = self.cost_unit
        if self.features.embedding is not None:
            extra["embedding_model"] = self.features.embedding
        if self.anchor is not None and self.bonus:
            extra["anchor"] = self._models[self.anchor]
            extra["bonus"] = self.bonus
        return extra | {
            "models": list(self._models),
            "costs": [float(c) for c in self.costs],
            "rule": self.rule,
            "threshold": self.threshold,
            "lam": self.lam,
            "tasks": list(self.features.tasks),
            "n_features": self.features.n_features,
            "coef": encode_array(self.coef),
            "intercept": [float(b) for b in self.intercept],
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> LearnedPolicy:
        try:
            return cls(
                models=list(params["models"]),
                costs=[float(c) for c in params["costs"]],
                coef=decode_array(params["coef"]),
                intercept=np.asarray(params["intercept"], dtype=float),
                tasks=[str(t) for t in params.get("tasks", [])],
                rule=str(params.get("rule", "threshold")),
                threshold=float(params.get("threshold", 0.5)),
                lam=float(params.get("lam", 0.0)),
                n_features=int(params.get("n_features", N_FEATURES)),
                link=str(params.get("link", "identity")),
                cost_model=CostModel.from_params(params["models"], params["cost_model"])
                if "cost_model" in params
                else None,
                cost_unit=float(params.get("cost_unit", 1.0)),
                embedding_model=params.get("embedding_model"),
                anchor=params.get("anchor"),
                bonus=float(params.get("bonus", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyParamsError(
                f"learned policy: params are incomplete or malformed ({exc}); refit it"
            ) from None
