"""Per-task figures of a replay: the complexity axis ("on every task", not only the average).

A promise on the mix can hide a task where the policy is much worse; `fit`, `replay` and the
dashboard show each task's kept accuracy with its interval, on the same items as the overall
figures (held-out for `fit`). Each task is resampled on its own items, paired with the baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradeoff.policies.replay.metrics import Bootstrap, accuracy_ci, ratio_ci
from tradeoff.policies.replay.simulate import Replay

# Fewer held-out items than this in a task: its interval is too wide to say much; flagged.
SMALL_TASK = 20


def task_groups(tasks: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(task, the indices of its items) for every task, in sorted task order."""
    names, inverse = np.unique(np.asarray(tasks).astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    ends = np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1]
    return list(zip((str(n) for n in names), np.split(order, ends), strict=True))


def task_rows(r: Replay, base: Replay, tasks: np.ndarray, seed: int) -> list[dict[str, Any]]:
    """One row per task, lowest kept share first: n, accuracy (CI), the baseline's, kept
    (accuracy / baseline's, CI), savings (CI), and whether the task is too small to judge."""
    rows = []
    for k, (task, idx) in enumerate(task_groups(tasks)):
        n = len(idx)
        boot = Bootstrap.draw(n, seed + 7919 * (k + 1), resamples=200)
        score, base_score = r.score[idx], base.score[idx]
        cost, base_cost = r.cost[idx], base.cost[idx]
        acc, base_acc = float(score.mean()), float(base_score.mean())
        acc_p, base_p = boot.means(score), boot.means(base_score)
        cost_p, base_cost_p = boot.means(cost), boot.means(base_cost)
        top_cost = float(max(cost.max(initial=0.0), base_cost.max(initial=0.0)))
        mean_base_cost = float(base_cost.mean())
        rows.append(
            {
                "task": task,
                "n": n,
                "accuracy": acc,
                "accuracy_ci": accuracy_ci(acc, n, acc_p),
                "baseline_accuracy": base_acc,
                "kept": acc / base_acc if base_acc > 0 else None,
                "kept_ci": ratio_ci(acc_p, base_p, n, 1.0),
                "savings": 1.0 - float(cost.mean()) / mean_base_cost
                if mean_base_cost > 0
                else None,
                "savings_ci": ratio_ci(cost_p, base_cost_p, n, top_cost, minus_from=1.0),
                "human_review": float(r.review[idx].mean()),
                "too_small": n < SMALL_TASK,
            }
        )
    return sorted(rows, key=lambda row: (row["kept"] is None, row["kept"] or 0.0, row["task"]))


def task_table(rows: list[dict[str, Any]], limit: int = 30) -> str:
    """A fixed-width table of the rows (lowest kept first), at most `limit` lines of tasks."""
    if not rows:
        return ""
    width = max([len(r["task"]) for r in rows[:limit]] + [4])
    lines = [f"{'task':{width}}  {'n':>5}  {'kept':>7}  {'95% CI':>15}  {'savings':>8}"]
    for row in rows[:limit]:
        kept = "-" if row["kept"] is None else f"{row['kept']:.1%}"
        ci = row["kept_ci"]
        band = f"{ci[0]:.0%}-{min(ci[1], 9.99):.0%}" if ci else "-"
        saved = "-" if row["savings"] is None else f"{row['savings']:.0%}"
        small = "  (too few items to judge)" if row["too_small"] else ""
        lines.append(
            f"{row['task']:{width}}  {row['n']:5d}  {kept:>7}  {band:>15}  {saved:>8}{small}"
        )
    if len(rows) > limit:
        lines.append(f"... and {len(rows) - limit} more tasks (all in --json)")
    return "\n".join(lines)
