"""Complexity and autonomy on the bundled LLMRouter data (its own train/test split, 5 seeds).

- **Every task**: `accuracy >= X% of baseline on every task` at X = 90 and 95, with the task
  table decided task by task (`policies.fit.per_task`) against the shared cost-weight paths
  alone (the previous method: `FitOptions.families` cannot turn the per-task path off, so the
  previous method is run by patching `per_task.applies` to False in the same process). Per
  seed: held-out savings with its interval, the lowest held-out kept share over the tasks,
  and how many of the 10 held-out tasks sit below the floor by more than their own interval.
- **Human review**: `accuracy >= 100% of baseline and human_review <= 10%` at review prices
  from 0.0001 to 0.01 USD (the baseline costs 0.000178 per request) against the same accuracy
  without review: held-out savings, review share and its interval.

Figures are held-out (the split's 500 test items, never used to fit), median and range over
seeds (the seed moves the cross-fitting folds and the searches).

    python benchmarks/bench_six_axes.py            # writes results/six_axes.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tradeoff.evals.bundled import bundled_dir  # noqa: E402
from tradeoff.evals.importers import import_file  # noqa: E402
from tradeoff.evals.reviewers import Reviewer  # noqa: E402
from tradeoff.evals.store import Store, open_store  # noqa: E402
from tradeoff.policies.errors import InfeasibleError  # noqa: E402
from tradeoff.policies.fit import per_task  # noqa: E402
from tradeoff.policies.fit.fitting import fit_policy  # noqa: E402
from tradeoff.policies.fit.options import FitOptions  # noqa: E402

SPLIT = dict(train_split="train", test_split="test", n_trials=10)
PRICES = (0.0001, 0.0003, 0.001, 0.01)


def _fit(store: Store, req: str, seed: int, **more: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        r = fit_policy(store, FitOptions("llmrouter", req, seed=seed, save=False, **SPLIT, **more))
    except InfeasibleError:
        return {"feasible": False}
    m = r.metrics
    return {
        "feasible": True,
        "family": r.family,
        "savings": m["savings_vs_baseline"],
        "savings_ci": m["savings_ci"],
        "kept": m["accuracy_vs_baseline"],
        "human_review": m["human_review"],
        "human_review_ci": m["human_review_ci"],
        "tasks": r.tasks,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def every_task(store: Store, seeds: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for floor in (0.90, 0.95):
        req = f"accuracy >= {floor:.0%} of baseline on every task"
        rows: dict[str, list[dict[str, Any]]] = {"per_task": [], "paths_only": []}
        for seed in seeds:
            rows["per_task"].append(_fit(store, req, seed))
            applies = per_task.applies
            per_task.applies = lambda _req: False  # type: ignore[assignment]
            try:
                rows["paths_only"].append(_fit(store, req, seed))
            finally:
                per_task.applies = applies  # type: ignore[assignment]
        out[req] = {
            method: {
                "savings": _summary([r["savings"] for r in runs]),
                "lowest_task_kept": _summary(
                    [min(t["kept"] for t in r["tasks"] if t["kept"] is not None) for r in runs]
                ),
                "tasks_below_floor_beyond_ci": _summary(
                    [
                        sum(1 for t in r["tasks"] if t["kept_ci"] and t["kept_ci"][1] < floor)
                        for r in runs
                    ]
                ),
                "runs": [{k: v for k, v in r.items() if k != "tasks"} for r in runs],
            }
            for method, runs in rows.items()
        }
    return out


def review(store: Store, seeds: list[int]) -> dict[str, Any]:
    req = "accuracy >= 100% of baseline and human_review <= 10%"
    alone = [_fit(store, "accuracy >= 100% of baseline", seed) for seed in seeds]
    out: dict[str, Any] = {
        "without review": {
            "savings": _summary([r["savings"] for r in alone if r["feasible"]]),
        }
    }
    for price in PRICES:
        reviewer = (Reviewer("reviewer", price),)
        runs = [_fit(store, req, seed, reviewers=reviewer) for seed in seeds]
        ok = [r for r in runs if r["feasible"]]
        out[f"review at ${price:g}"] = {
            "savings": _summary([r["savings"] for r in ok]),
            "human_review": _summary([r["human_review"] for r in ok]),
            "human_review_ci_high": _summary([r["human_review_ci"][1] for r in ok]),
            "kept": _summary([r["kept"] for r in ok]),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/six_axes.json"))
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "l.duckdb")
        import_file(store, bundled_dir() / "llmrouter" / "outcomes.parquet", "llmrouter")
        result = {
            "data": "bundled LLMRouter, its train/test split (5,489 / 500 items)",
            "seeds": seeds,
            "every_task": every_task(store, seeds),
            "human_review": review(store, seeds),
        }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "every_task"}, indent=2))
    for req, methods in result["every_task"].items():
        for method, m in methods.items():
            print(req, method, {k: v for k, v in m.items() if k != "runs"})


if __name__ == "__main__":
    main()
