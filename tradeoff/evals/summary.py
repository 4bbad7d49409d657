"""The end-of-run summary: per model (and per model and task) accuracy with a 95% CI, mean cost
per request, p50/p95 latency, consistency and errors.

Accuracy counts an errored outcome as a wrong answer (score 0): a router pays for errors too.
The interval is Wilson's score interval at the item count (repeated samples of one item are
not independent items: counting them would narrow the interval with every repeat), exact for
pass/fail graders and conservative for graded [0, 1] scores and item means over repeats.
Latency percentiles use successful calls only.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from tradeoff.evals.reliability import reliability_frame

Z95 = 1.959963984540054


def wilson(mean: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion `mean` observed over `n` trials."""
    if n == 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (mean + z * z / (2 * n)) / denom
    half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
    # Rounded: at mean 1 the upper bound is exactly 1, not 0.9999999999999999.
    return (max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12)))


def _row(group: pd.DataFrame, reliability: float | None) -> dict[str, Any]:
    errored = group["error"].notna()
    scores = group["score"].where(~errored, 0.0).fillna(0.0)
    n = len(group)
    accuracy = float(scores.mean()) if n else 0.0
    low, high = wilson(accuracy, int(group["item_id"].nunique()))
    ok = group.loc[~errored, "latency_ms"].dropna()
    return {
        "n": n,
        "accuracy": accuracy,
        "accuracy_ci": [low, high],
        "mean_cost_usd": float(group["cost_usd"].fillna(0.0).mean()) if n else 0.0,
        "p50_latency_ms": float(ok.quantile(0.5)) if len(ok) else None,
        "p95_latency_ms": float(ok.quantile(0.95)) if len(ok) else None,
        "consistency": reliability,
        "errors": int(errored.sum()),
        "error_rate": float(errored.mean()) if n else 0.0,
    }


def summarize(outcomes: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """{"models": [...], "tasks": [...]} from outcomes with columns model, task, item_id,
    score, error, cost_usd, latency_ms. Consistency is None when no item has 2+ samples."""
    repeated = bool(len(outcomes)) and outcomes.groupby(["model", "item_id"]).size().max() > 1
    by_model = reliability_frame(outcomes, ["model"]) if repeated else {}
    by_task = reliability_frame(outcomes, ["model", "task"]) if repeated else {}
    models = [
        {"model": model, **_row(group, by_model.get(model))}
        for model, group in outcomes.groupby("model", sort=True)
    ]
    tasks = [
        {"model": model, "task": task, **_row(group, by_task.get((model, task)))}
        for (model, task), group in outcomes.groupby(["model", "task"], sort=True)
    ]
    return {"models": models, "tasks": tasks}


def _fmt(row: dict[str, Any]) -> list[str]:
    low, high = row["accuracy_ci"]
    ms = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
    cons = row["consistency"]
    return [
        str(row["n"]),
        f"{row['accuracy']:.3f} [{low:.3f}, {high:.3f}]",
        f"{row['mean_cost_usd']:.6f}",
        ms(row["p50_latency_ms"]),
        ms(row["p95_latency_ms"]),
        "-" if cons is None else f"{cons:.3f}",
        f"{row['errors']} ({row['error_rate']:.1%})",
    ]


def render(summary: dict[str, list[dict[str, Any]]]) -> str:
    """A plain-text table: one line per model, then one per model and task."""
    head = ["n", "accuracy [95% CI]", "$/request", "p50 ms", "p95 ms", "consistency", "errors"]
    lines: list[list[str]] = [["model", "task", *head]]
    for row in summary["models"]:
        lines.append([row["model"], "(all)", *_fmt(row)])
    if len({r["task"] for r in summary["tasks"]}) > 1:
        for row in summary["tasks"]:
            lines.append([row["model"], row["task"], *_fmt(row)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) + 2)]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )
