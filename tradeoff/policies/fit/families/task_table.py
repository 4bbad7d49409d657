"""Fitting `task_table`: per-task shrunk means of each model's score, searched over the
shrinkage strength and per-request vs per-model cost (`policies.fit.spaces`)."""

from __future__ import annotations

import numpy as np
import optuna

from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.task_table import TaskTablePolicy
from tradeoff.policies.fit.spaces import Config, Folds, Space, per_request_note
from tradeoff.policies.fit.spec import FamilySpec, FitContext

SHRINK = (1 / 16, 16.0)


class TaskTableSpace(Space):
    family = "task_table"

    def default(self, items: np.ndarray) -> Config:
        return {"shrink": 1.0, "per_request_cost": self.per_request_cost}

    def suggest(self, trial: optuna.Trial, items: np.ndarray) -> Config:
        return {
            "shrink": trial.suggest_float("shrink", *SHRINK, log=True),
            "per_request_cost": self._costs(trial),
        }

    def options(self, config: Config, excluded: Folds) -> tuple[np.ndarray, np.ndarray]:
        p = self.pieces
        rows = p.task_means("scores", p.scores, config["shrink"], excluded)[1]
        return rows, p.cost(config["per_request_cost"], excluded)[1]

    def serve(
        self, configs: dict[int, Config], lam: float, unit: float, bonus: float = 0.0
    ) -> Policy:
        p = self.pieces
        fitted = [
            p.task_means("scores", p.scores, c["shrink"], frozenset({f}))[0]
            for f, c in configs.items()
        ]
        table = np.mean([m.table for m in fitted], axis=0)
        overall = np.mean([m.overall for m in fitted], axis=0)
        if bonus and p.base_j is not None:  # the anchored stretch: the table is what is ranked
            table[:, p.base_j] += bonus
            overall[p.base_j] += bonus
        scores = {t: [float(x) for x in row] for t, row in zip(p.tasks, table, strict=True)}
        default = [float(x) for x in overall]
        return TaskTablePolicy.by_request(
            list(p.train.models), scores, default, self.served_cost_model(configs), lam, unit
        )

    def describe(self, config: Config) -> str:
        return f"shrinkage x{config['shrink']:.2g}{per_request_note(config)}"


class TaskTableSpec(FamilySpec):
    name = "task_table"
    simplicity = 1
    reports_models_used = True

    def unusable(self, ctx: FitContext) -> str | None:
        reason = super().unusable(ctx)
        if reason is None and len(set(ctx.train.tasks)) < 2:
            reason = "the dataset has a single task"
        return reason

    def spaces(self, ctx: FitContext) -> list[Space]:
        return [TaskTableSpace(ctx.pieces, ctx.per_request_cost)]
