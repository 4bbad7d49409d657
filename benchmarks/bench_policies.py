"""Quality and speed of fitted routing policies.

Quality, on held-out items of each dataset: the policy fitted for "accuracy >= 95% of the best
single model, least cost" beside every single model, a random router at equal cost (a coin
between the cheapest model and the baseline, weighted to spend what the policy spends) and the
oracle; the share of the oracle's accuracy gap over the random router that the policy closes.
Datasets: the bundled LLMRouter and RouterArena outcomes (converted copies of
/work/shared/data/llmrouter and /routerarena) and a synthetic 10k items x 10 models set.

Speed: fit time; decision time per request of the learned router (p50/p99) against the same
ridge predictors behind scikit-learn's HashingVectorizer; vectorised replay of one candidate
against a per-item Python loop.

    python benchmarks/bench_policies.py            # writes benchmarks/results/policies.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.bundled import import_bundled  # noqa: E402
from evals.store import Store, open_store  # noqa: E402
from policies.base import RouteRequest  # noqa: E402
from policies.data import Outcomes, load_outcomes  # noqa: E402
from policies.fitting import fit_policy  # noqa: E402
from policies.learned_fit import fit_learned  # noqa: E402
from policies.replay import replay, routes_from_plans  # noqa: E402
from policies.splits import make_splits  # noqa: E402
from tests.policies.synthetic import build_store  # noqa: E402

REQUIREMENT = "accuracy >= 95% of baseline"


def synthetic(path: Path, n_items: int = 10_000, n_models: int = 10, seed: int = 0) -> Store:
    """Items of 20 tasks; each model has a skill per task; items have a latent difficulty that
    shows in their wording, so both the task and the prompt text carry signal."""
    rng = np.random.default_rng(seed)
    tasks = [f"task{t:02d}" for t in range(20)]
    skill = (
        rng.normal(0, 1.0, size=(n_models, len(tasks))) + np.linspace(-1, 1.5, n_models)[:, None]
    )
    prices = {f"model{j}": float(1e-4 * 10 ** (2 * j / (n_models - 1))) for j in range(n_models)}
    difficulty = rng.normal(0, 1.0, size=n_items)
    hard_words = ["prove", "derive", "optimize", "formal", "rigorous", "multi-step"]
    easy_words = ["list", "name", "define", "simple", "short", "basic"]
    per_task = n_items // len(tasks)

    def prompt(task: str, i: int) -> str:
        k = tasks.index(task) * per_task + i
        words = hard_words if difficulty[k] > 0 else easy_words
        picks = rng.choice(words, size=3)
        return f"{task} question {i}: please {' '.join(picks)} the answer"

    def score(r: np.random.Generator, task: str, model: str, i: int) -> float:
        k = tasks.index(task) * per_task + i
        logit = skill[int(model[5:]), tasks.index(task)] - 1.5 * difficulty[k]
        return float(r.random() < 1 / (1 + np.exp(-logit)))

    return build_store(
        path, dataset="synthetic", tasks=dict.fromkeys(tasks, per_task), models=prices,
        score=score, prompt=prompt, seed=seed,
    )  # fmt: skip


def random_router(singles: dict, baseline: str, policy_cost: float) -> dict:
    """Expected accuracy of a coin between the cheapest model and the baseline at equal cost."""
    cheap = min(singles, key=lambda m: singles[m]["cost_per_request_usd"])
    c, b = singles[cheap], singles[baseline]
    span = b["cost_per_request_usd"] - c["cost_per_request_usd"]
    q = 1.0 if span <= 0 else float(np.clip((policy_cost - c["cost_per_request_usd"]) / span, 0, 1))
    return {
        "mix": f"{q:.0%} {baseline} / {1 - q:.0%} {cheap}",
        "accuracy": q * b["accuracy"] + (1 - q) * c["accuracy"],
        "cost_per_request_usd": q * b["cost_per_request_usd"] + (1 - q) * c["cost_per_request_usd"],
    }


def quality(store: Store, dataset: str, train: str | None, test: str | None, trials: int) -> dict:
    started = time.perf_counter()
    report = fit_policy(
        store, dataset, REQUIREMENT, train_split=train, test_split=test, n_trials=trials, save=False
    )
    seconds = time.perf_counter() - started
    m, singles = report.metrics, report.singles
    rnd = random_router(singles, report.baseline, m["cost_per_request_usd"])
    gap = report.oracle["accuracy"] - rnd["accuracy"]
    closed = (m["accuracy"] - rnd["accuracy"]) / gap if gap > 0 else None
    return {
        "dataset": dataset,
        "n_test": m["n"],
        "policy": report.description,
        "baseline": report.baseline,
        "accuracy": m["accuracy"],
        "accuracy_ci": m["accuracy_ci"],
        "accuracy_vs_baseline": m["accuracy_vs_baseline"],
        "cost_per_request_usd": m["cost_per_request_usd"],
        "savings_vs_baseline": m["savings_vs_baseline"],
        "savings_ci": m["savings_ci"],
        "requirement_held_on_test": all(v["holds"] for v in report.test_constraints.values()),
        "singles": {k: {"accuracy": v["accuracy"], "cost_per_request_usd": v["cost_per_request_usd"]} for k, v in singles.items()},
        "random_at_equal_cost": rnd,
        "oracle": {"accuracy": report.oracle["accuracy"], "cost_per_request_usd": report.oracle["cost_per_request_usd"]},
        "oracle_gap_closed": closed,
        "fit_seconds": seconds,
        "sentence": report.sentence(),
    }  # fmt: skip


def decision_times(outcomes: Outcomes, train: str | None, test: str | None) -> dict:
    """Per-request plan() of the learned router vs the same ridges behind sklearn's hasher."""
    from sklearn.feature_extraction.text import HashingVectorizer

    splits = make_splits(outcomes.item_ids, outcomes.splits, train_split=train, test_split=test)
    fit_out, held = outcomes.subset(splits.train), outcomes.subset(splits.test)
    policy = fit_learned(fit_out, fit_out.cost[:, :, 0].mean(axis=0), seed=0).policy_template
    requests = [RouteRequest(str(p), str(t)) for p, t in zip(held.prompts, held.tasks, strict=True)]
    hasher = HashingVectorizer(
        n_features=policy.features.n_features, ngram_range=(1, 2), alternate_sign=False
    )
    coef = policy.coef[:, : policy.features.n_features]

    def timed(fn: object) -> np.ndarray:
        out = []
        for r in requests:
            t = time.perf_counter_ns()
            fn(r)  # type: ignore[operator]
            out.append((time.perf_counter_ns() - t) / 1e6)
        return np.array(out)

    ours = timed(policy.plan)
    sk = timed(lambda r: np.argmax(hasher.transform([r.prompt]) @ coef.T + policy.intercept))
    return {
        "requests": len(requests),
        "learned_p50_ms": float(np.percentile(ours, 50)),
        "learned_p99_ms": float(np.percentile(ours, 99)),
        "sklearn_hasher_p50_ms": float(np.percentile(sk, 50)),
        "sklearn_hasher_p99_ms": float(np.percentile(sk, 99)),
        "speedup_p50": float(np.percentile(sk, 50) / np.percentile(ours, 50)),
    }


def replay_speed(outcomes: Outcomes) -> dict:
    """One task-table-like candidate: vectorised replay vs a per-item Python loop."""
    from policies.task_table import TaskTablePolicy

    tasks = sorted({str(t) for t in outcomes.tasks})
    policy = TaskTablePolicy(
        {t: outcomes.models[i % len(outcomes.models)] for i, t in enumerate(tasks)},
        outcomes.models[0],
    )
    plans = policy.plan_many(
        [
            RouteRequest(str(p), str(t))
            for p, t in zip(outcomes.prompts, outcomes.tasks, strict=True)
        ]
    )
    routes = routes_from_plans(plans, outcomes)
    t = time.perf_counter()
    for _ in range(5):
        vec = replay(outcomes, routes)
    vectorised = (time.perf_counter() - t) / 5
    index = {m: j for j, m in enumerate(outcomes.models)}
    t = time.perf_counter()
    loop_score = [float(outcomes.score[i, index[p.models[0]], 0]) for i, p in enumerate(plans)]
    loop_cost = [float(outcomes.cost[i, index[p.models[0]], 0]) for i, p in enumerate(plans)]
    looped = time.perf_counter() - t
    assert np.allclose(loop_score, vec.score) and np.allclose(loop_cost, vec.cost)
    return {"items": outcomes.n, "vectorised_ms": vectorised * 1e3, "python_loop_ms": looped * 1e3, "speedup": looped / vectorised}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=120)
    parser.add_argument("--items", type=int, default=10_000, help="synthetic items")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "policies.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.duckdb")
        import_bundled(store)
        synthetic(Path(tmp) / "bench.duckdb", n_items=args.items)
        runs = [
            quality(store, "llmrouter", "train", "test", args.trials),
            quality(store, "routerarena", None, None, args.trials),
            quality(store, "synthetic", None, None, args.trials),
        ]
        llm = load_outcomes(store, "llmrouter")
        decisions = decision_times(llm, "train", "test")
        speed = replay_speed(load_outcomes(store, "synthetic"))

    print(f"{'dataset':12} {'policy':36} {'acc':>6} {'of base':>7} {'$/req':>9} {'saved':>6} "
          f"{'random acc':>10} {'oracle acc':>10} {'gap closed':>10} {'fit s':>6}")  # fmt: skip
    for r in runs:
        closed = "n/a" if r["oracle_gap_closed"] is None else f"{r['oracle_gap_closed']:.0%}"
        print(
            f"{r['dataset']:12} {r['policy'][:36]:36} {r['accuracy']:6.3f} "
            f"{r['accuracy_vs_baseline']:7.1%} {r['cost_per_request_usd']:9.3g} "
            f"{r['savings_vs_baseline']:6.0%} {r['random_at_equal_cost']['accuracy']:10.3f} "
            f"{r['oracle']['accuracy']:10.3f} {closed:>10} {r['fit_seconds']:6.1f}"
        )
        for name, s in sorted(r["singles"].items(), key=lambda kv: kv[1]["cost_per_request_usd"]):
            print(
                f"{'':12}   single {name[:29]:29} {s['accuracy']:6.3f} {'':7} {s['cost_per_request_usd']:9.3g}"
            )
    d = decisions
    print(
        f"\nlearned decision time per request ({d['requests']} llmrouter test prompts): "
        f"p50 {d['learned_p50_ms']:.3f} ms, p99 {d['learned_p99_ms']:.3f} ms; sklearn "
        f"HashingVectorizer + same ridges p50 {d['sklearn_hasher_p50_ms']:.3f} ms "
        f"({d['speedup_p50']:.1f}x slower)"
    )
    print(
        f"replay of one candidate over {speed['items']} items: vectorised "
        f"{speed['vectorised_ms']:.2f} ms vs per-item Python loop {speed['python_loop_ms']:.1f} ms "
        f"({speed['speedup']:.0f}x)"
    )
    doc = {
        "requirement": REQUIREMENT,
        "trials": args.trials,
        "quality": runs,
        "decision_time": decisions,
        "replay": speed,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
