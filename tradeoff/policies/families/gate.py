"""Per-request gating of a cascade (or best-of-k): try the cheap model first only where it pays.

A cascade pays for the cheap attempt on every request and for the strong model on the ones the
verifier rejects. Whether that beats calling the strong model directly (or the cheap one alone)
depends on the task (how often the cheap answer is rejected, how often the chain is right) and
on the request's length (what each call costs). Per request the gate compares three options by
the gain-per-dollar rule of `policies.fit.paths`:

    0: the cheap model alone       score a0[task], cost c_cheap
    1: the chain (k cheap samples, escalate when the verifier rejects)
                                   score a1[task], cost k x c_cheap + q[task] x c_strong
    2: the strong model alone      score a2[task], cost c_strong

with per-task means shrunk toward the overall ones (`policies.families.shrink`) and per-request costs from
`policies.families.costs`, the same at serve time as when fitting. Params: `{"tasks": {task: [a0, a1, a2,
q]}, "default": [a0, a1, a2, q], "cost_model": {...}, "lam": x, "cost_unit": usd}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tradeoff.policies.errors import PolicyParamsError
from tradeoff.policies.families.costs import CostModel
from tradeoff.policies.fit.paths import TIE

CHEAP, CHAIN, STRONG = 0, 1, 2


def option_costs(cheap: np.ndarray, strong: np.ndarray, escalate: np.ndarray, k: int) -> np.ndarray:
    """(n, 3) expected cost of each option from per-request model costs and escalation rates."""
    return np.stack([cheap, k * cheap + escalate * strong, strong], axis=1)


class Gate:
    def __init__(
        self,
        models: tuple[str, str],
        k: int,
        tasks: Mapping[str, Sequence[float]],
        default: Sequence[float],
        cost_model: CostModel,
        lam: float,
        cost_unit: float,
    ) -> None:
        if len(default) != 4 or any(len(row) != 4 for row in tasks.values()):
            raise PolicyParamsError("gate: every task row needs [a0, a1, a2, q]; refit")
        if not cost_unit > 0:
            raise PolicyParamsError("gate: cost_unit must be > 0; refit")
        self.models, self.k = models, k
        self.tasks = {t: np.asarray(row, dtype=float) for t, row in sorted(tasks.items())}
        self.default = np.asarray(default, dtype=float)
        self.cost_model, self.lam, self.cost_unit = cost_model, float(lam), float(cost_unit)
        self._cols = [cost_model.models.index(m) for m in models]

    def choose(self, prompt: str, task: str | None) -> int:
        row = self.tasks.get(task, self.default) if task is not None else self.default
        cost = self.cost_model.one(prompt, task)[self._cols]
        options = option_costs(cost[:1], cost[1:], row[3:], self.k)[0]
        return int(np.argmax(row[:3] - (self.lam + TIE) * options / self.cost_unit))

    def to_params(self) -> dict[str, Any]:
        return {
            "tasks": {t: [float(x) for x in row] for t, row in self.tasks.items()},
            "default": [float(x) for x in self.default],
            "cost_model": self.cost_model.to_params(),
            "lam": self.lam,
            "cost_unit": self.cost_unit,
        }

    @classmethod
    def from_params(cls, models: tuple[str, str], k: int, params: Any) -> Gate:
        try:
            return cls(
                models,
                k,
                {str(t): [float(x) for x in row] for t, row in params["tasks"].items()},
                [float(x) for x in params["default"]],
                CostModel.from_params(list(models), params["cost_model"]),
                float(params["lam"]),
                float(params["cost_unit"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PolicyParamsError(f"gate params are malformed ({exc}); refit") from None
