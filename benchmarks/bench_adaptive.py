"""Adaptive evaluation, simulated on recorded outcomes: what it spends against exhaustive
evaluation, and whether the policy fitted on what it measured still meets the requirement on
held-out items, beside the policy fitted on everything. No call is paid: the race
(`evals.adaptive.race.Race`, the code `tradeoff eval --adaptive` runs) is fed the answers the
models gave, from the store.

Per dataset and seed: 30% of the items (seeded hash) are held out and never seen by either
side. On the other 70% (the pool) the exhaustive side has every model's outcome; the adaptive
side races the models round by round and keeps only the outcomes it asked for (its drops are
recorded as `tradeoff eval --adaptive` records them). `tradeoff fit`'s `fit_policy` then runs
on each (same requirement, baseline and seed), and both policies are replayed on the held-out
items with every model's real outcomes there.

Datasets: the bundled copies of /work/shared/data/llmrouter (9 models, 14 tasks) and
/work/shared/data/routerarena (2 models, 36 small tasks), converted by build_bundled_data.py
(the shared folder's frugalgpt has aggregates only, no per-item outcomes to replay), and the
10k-item x 10-model synthetic set of bench_policies.py.

    python benchmarks/bench_adaptive.py            # table + benchmarks/results/adaptive.json
    python benchmarks/bench_adaptive.py --seeds 0 1 2 --trials 60
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from bench_policies import synthetic  # noqa: E402

from tradeoff.evals.adaptive.drops import record_drop  # noqa: E402
from tradeoff.evals.adaptive.race import Race  # noqa: E402
from tradeoff.evals.adaptive.run import ROUNDS, requirement_rules  # noqa: E402
from tradeoff.evals.bundled import import_bundled  # noqa: E402
from tradeoff.evals.store import Store, open_store  # noqa: E402
from tradeoff.policies.data import Outcomes, load_outcomes  # noqa: E402
from tradeoff.policies.errors import InfeasibleError  # noqa: E402
from tradeoff.policies.fit.fitting import fit_policy  # noqa: E402
from tradeoff.policies.fit.options import FitOptions  # noqa: E402
from tradeoff.policies.fit.splits import unit_hash  # noqa: E402
from tradeoff.policies.replay.evaluate import replay_artifact  # noqa: E402

REQUIREMENT = "accuracy >= 95% of baseline"
HELD_OUT = 0.3


def copy_dataset(
    store: Store, source: str, target: str, item_ids: np.ndarray, keep: pd.DataFrame | None = None
) -> None:
    """`target`: the items of `source` named, with their outcomes (only `keep`'s item x model
    pairs when given)."""
    wanted = pd.DataFrame({"item_id": [str(i) for i in item_ids]})
    with store.transaction() as con:
        con.register("wanted", wanted)
        con.execute("INSERT INTO datasets (name) VALUES (?)", [target])
        con.execute(
            "INSERT INTO items SELECT ? AS dataset, i.item_id, task, prompt, messages, reference, "
            "grader, split, metadata FROM items i JOIN wanted USING (item_id) WHERE dataset = ?",
            [target, source],
        )
        select = (
            "SELECT ? AS dataset, o.item_id, o.model, params_hash, sample, response, score, "
            "prompt_tokens, completion_tokens, cost_usd, latency_ms, ttft_ms, error, run_id, "
            "created_at FROM outcomes o JOIN wanted USING (item_id)"
        )
        if keep is not None:
            con.register("keep", keep)
            select += " JOIN keep k ON k.item_id = o.item_id AND k.model = o.model"
        con.execute(f"INSERT INTO outcomes {select} WHERE o.dataset = ?", [target, source])


def race(pool: Outcomes, baseline: str, seed: int, by_task: bool) -> tuple[Race, pd.DataFrame]:
    """Race the pool's models on their recorded answers; the item x model pairs it asked for."""
    floors, dominance = requirement_rules(REQUIREMENT)
    items, models = [str(i) for i in pool.item_ids], list(pool.models)
    r = Race(items, [str(t) for t in pool.tasks], models, baseline=baseline, floors=floors,
             dominance=dominance, by_task=by_task, seed=seed)  # fmt: skip
    row, col = {item: i for i, item in enumerate(items)}, {m: j for j, m in enumerate(models)}
    batch = max(10, -(-len(items) // ROUNDS))  # the CLI's default
    while not r.finished:
        for item in r.next_round(batch):
            for model in r.active:
                i, j = row[item], col[model]
                r.record(item, model, 0, float(pool.score[i, j, 0]), float(pool.cost[i, j, 0]))
        r.close_round()
    keep = [(items[i], model) for model in models for i in r.order[: r.measured_items(model)]]
    return r, pd.DataFrame(keep, columns=["item_id", "model"])


def fit_and_hold_out(
    store: Store, dataset: str, held: str, baseline: str, seed: int, trials: int
) -> dict[str, Any]:
    """Fit on `dataset`; the chosen policy's metrics on the held-out dataset."""
    try:
        options = FitOptions(
            dataset, REQUIREMENT, baseline=baseline, seed=seed, n_trials=trials, save=False
        )
        report = fit_policy(store, options)
    except InfeasibleError:
        return {"policy": None}
    assert report.artifact is not None
    m = replay_artifact(store, report.artifact, dataset=held, split="all", seed=seed)
    return {
        "policy": report.description,
        "models": sorted(m["models_used"]),
        "kept": m["accuracy_vs_baseline"],
        "kept_ci": m["accuracy_vs_baseline_ci"],
        "cost": m["cost_per_request_usd"],
        "savings": m["savings_vs_baseline"],
        "meets": m["accuracy_vs_baseline"] >= 0.95,
    }


def simulate(
    store: Store, dataset: str, baseline: str, seed: int, trials: int, by_task: bool
) -> dict[str, Any]:
    full = load_outcomes(store, dataset)
    held_mask = unit_hash(full.item_ids, seed, "adaptive-held-out") < HELD_OUT
    tag = f"{dataset}-{'t' if by_task else 'd'}{seed}"
    copy_dataset(store, dataset, f"{tag}-held", full.item_ids[held_mask])
    copy_dataset(store, dataset, f"{tag}-all", full.item_ids[~held_mask])
    pool = full.subset(np.flatnonzero(~held_mask))
    started = time.perf_counter()
    r, keep = race(pool, baseline, seed, by_task)
    race_s = time.perf_counter() - started
    copy_dataset(store, dataset, f"{tag}-ada", pool.item_ids, keep)
    for drop in r.drops:
        record_drop(store, f"{tag}-ada", drop, "", REQUIREMENT, "simulation")
    spent = pool.cost[:, :, 0]
    used = np.zeros_like(spent, dtype=bool)
    for j, model in enumerate(pool.models):
        used[r.order[: r.measured_items(model)], j] = True
    return {
        "seed": seed,
        "items_pool": pool.n,
        "items_held_out": int(held_mask.sum()),
        "calls_share": float(used.mean()),
        "cost_share": float(spent[used].sum() / spent.sum()),
        "dropped": [d.to_dict() for d in r.drops],
        "stop_reason": r.stop_reason,
        "race_seconds": race_s,
        "exhaustive": fit_and_hold_out(store, f"{tag}-all", f"{tag}-held", baseline, seed, trials),
        "adaptive": fit_and_hold_out(store, f"{tag}-ada", f"{tag}-held", baseline, seed, trials),
    }


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'dataset':22} {'calls spent':>17} {'cost spent':>17} {'drops':>5} "
        f"{'meets: exh / ada':>16} {'kept of base: exhaustive':>26} {'adaptive':>19} "
        f"{'policy $ ada/exh':>17}"
    ]
    for res in results:
        runs = res["runs"]
        exh = [r["exhaustive"] for r in runs if r["exhaustive"]["policy"]]
        ada = [r["adaptive"] for r in runs if r["adaptive"]["policy"]]
        ratio = [
            r["adaptive"]["cost"] / r["exhaustive"]["cost"]
            for r in runs
            if r["adaptive"]["policy"] and r["exhaustive"]["policy"] and r["exhaustive"]["cost"]
        ]
        lines.append(
            f"{res['label']:22} {spread([r['calls_share'] for r in runs], '.0%'):>17} "
            f"{spread([r['cost_share'] for r in runs], '.0%'):>17} "
            f"{statistics.median(len(r['dropped']) for r in runs):>5g} "
            f"{sum(e['meets'] for e in exh):>7}/{len(runs)} {sum(a['meets'] for a in ada):>3}/{len(runs)} "
            f"{spread([e['kept'] for e in exh], '.1%'):>26} {spread([a['kept'] for a in ada], '.1%'):>19} "
            f"{spread(ratio, '.2f'):>17}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=120, help="Optuna trials per fit")
    parser.add_argument("--items", type=int, default=10_000, help="synthetic items")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "adaptive.json"))
    args = parser.parse_args()
    cases = [
        ("llmrouter", "llmrouter", "llama-3.1-nemotron-51b-instruct", False),
        ("llmrouter (by task)", "llmrouter", "llama-3.1-nemotron-51b-instruct", True),
        ("routerarena", "routerarena", "gemini-2.0-flash-001", False),
        ("synthetic", "synthetic", "model9", False),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.duckdb")
        import_bundled(store)
        synthetic(Path(tmp) / "bench.duckdb", n_items=args.items)
        for label, dataset, baseline, by_task in cases:
            runs = [simulate(store, dataset, baseline, s, args.trials, by_task) for s in args.seeds]
            results.append({"label": label, "dataset": dataset, "baseline": baseline,
                            "by_task": by_task, "runs": runs})  # fmt: skip
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
    doc = {"requirement": REQUIREMENT, "held_out": HELD_OUT, "trials": args.trials,
           "seeds": args.seeds, "results": results}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
