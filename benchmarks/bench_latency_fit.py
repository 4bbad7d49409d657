"""What a `p95_latency` cap costs a fit: fit time with and without the cap, and the p95 bootstrap.

Two outcome sets with recorded latencies (the bundled data records none, so its latencies are
generated here, seeded: each model a typical latency, lognormal noise, the slower models the
dearer ones):

- `llmrouter`: the bundled LLMRouter outcomes (its own train/test split), latencies added;
- `synthetic`: 10k items x 10 models (`tests/policies/synthetic.py`), 20 tasks.

For each, `fit_policy` at "accuracy >= 95% of baseline" and at the same plus "p95_latency <= 2s"
(20 trials, seed 0): seconds (the fastest of `--rounds` runs, capped and uncapped alternating,
as the machine may be shared) and their ratio (the bar: at most 1.5x). With `--old REF`,
the same fits run in the same session from a `git archive` of REF (the previous method: there,
each candidate's p95 bootstrap was `np.nanquantile(latency[indices], 0.95, axis=1)`). Beside
them, the p95 bootstrap itself, old call vs `Bootstrap.quantiles`, on a training set's size.

    python benchmarks/bench_latency_fit.py --old 9bcc1d5   # writes results/latency_fit.json
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.policies.synthetic import build_store  # noqa: E402
from tradeoff.evals.importers import import_file  # noqa: E402
from tradeoff.evals.store import open_store  # noqa: E402
from tradeoff.policies.replay.metrics import Bootstrap  # noqa: E402

BASE = "accuracy >= 95% of baseline"
CAPPED = BASE + " and p95_latency <= 2s"
DATASETS = {"llmrouter": ("train", "test"), "synthetic": (None, None)}

RUNNER = """
import json, sys, time
from tradeoff.evals.store import open_store
from tradeoff.policies.errors import InfeasibleError
from tradeoff.policies.fit.fitting import fit_policy
try:  # fit_policy takes one FitOptions since the family specs
    from tradeoff.policies.fit.options import FitOptions
    fit = lambda store, *args, **kw: fit_policy(store, FitOptions(*args, **kw))
except ImportError:
    fit = fit_policy
store = open_store(sys.argv[1], create=False)
for _ in range(int(sys.argv[3])):
    for dataset, req, train, test in json.loads(sys.argv[2]):
        started = time.perf_counter()
        try:
            r = fit(store, dataset, req, train_split=train, test_split=test, save=False)
            found = r.description
        except InfeasibleError:
            found = "infeasible"
        print(json.dumps([dataset, req, time.perf_counter() - started, found]), flush=True)
"""


def latency_ms(rng: np.random.Generator, rank: np.ndarray) -> np.ndarray:
    """A model of price rank r (0 = cheapest) answers in about 200 x 1.25^r ms."""
    return 200.0 * 1.25 ** rank.astype(float) * rng.lognormal(0.0, 0.4, size=len(rank))


def llmrouter(db: Path, tmp: Path) -> None:
    frame = pd.read_parquet(ROOT / "datasets" / "llmrouter" / "outcomes.parquet")
    price = frame.groupby("model")["cost_usd"].mean().rank(method="first") - 1
    rank = frame["model"].map(price).to_numpy()
    frame["latency_ms"] = latency_ms(np.random.default_rng(0), rank)
    path = tmp / "llmrouter.parquet"
    frame.to_parquet(path)
    import_file(open_store(db), path, "llmrouter")


def synthetic(db: Path, n_items: int = 10_000, n_models: int = 10) -> None:
    rng = np.random.default_rng(0)
    tasks = [f"task{t:02d}" for t in range(20)]
    skill = rng.normal(0, 1, (n_models, len(tasks))) + np.linspace(-1, 1.5, n_models)[:, None]
    prices = {f"model{j}": float(1e-4 * 10 ** (2 * j / (n_models - 1))) for j in range(n_models)}
    noise = np.random.default_rng(1)

    def score(r: np.random.Generator, task: str, model: str, i: int) -> float:
        logit = skill[int(model[5:]), tasks.index(task)] - 0.002 * i
        return float(r.random() < 1 / (1 + np.exp(-logit)))

    def latency(model: str) -> float:
        return float(latency_ms(noise, np.array([int(model[5:])]))[0])

    per_task = n_items // len(tasks)
    build_store(
        db, dataset="synthetic", tasks=dict.fromkeys(tasks, per_task), models=prices,
        score=score, latency=latency, seed=0,
    )  # fmt: skip


def fits(db: Path, tree: Path, rounds: int) -> dict[tuple[str, str], tuple[float, str]]:
    """(dataset, requirement) -> (seconds, what was chosen), by the code in `tree`: the
    fastest of `rounds` runs, with and without the cap alternating (the machine is shared)."""
    jobs = [[d, req, *DATASETS[d]] for d in DATASETS for req in (BASE, CAPPED)]
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(db), json.dumps(jobs), str(rounds)],
        env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    out: dict[tuple[str, str], tuple[float, str]] = {}
    for line in done.stdout.splitlines():
        dataset, req, seconds, found = json.loads(line)
        out[(dataset, req)] = min(out.get((dataset, req), (seconds, found)), (seconds, found))
    return out


def bootstrap_call(n: int, repeats: int = 20) -> dict[str, float]:
    """Seconds per p95 bootstrap of n items (200 resamples), the old call and the new."""
    x = np.random.default_rng(2).lognormal(6, 1, size=n)
    boot = Bootstrap(n, 1)
    assert np.array_equal(np.nanquantile(x[boot.indices], 0.95, axis=1), boot.quantiles(x, 0.95))
    started = time.perf_counter()
    for _ in range(repeats):
        np.nanquantile(x[boot.indices], 0.95, axis=1)
    old = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        boot.quantiles(x, 0.95)
    new = (time.perf_counter() - started) / repeats
    return {"items": n, "old_ms": old * 1e3, "new_ms": new * 1e3, "speedup": old / new}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default=None, help="git ref of the previous method to time too")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each fit (the fastest)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latency_fit.json"))
    args = parser.parse_args()
    doc: dict = {"threads": os.cpu_count(), "old_ref": args.old, "rounds": args.rounds, "fits": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "latency.duckdb"
        llmrouter(db, tmp)
        synthetic(db)
        runs = {"new": fits(db, ROOT, args.rounds)}
        if args.old:
            old_tree = tmp / "old"
            old_tree.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.old], check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
            runs["old"] = fits(db, old_tree, args.rounds)
    lines = [
        f"{'code':4}  {'dataset':10}  {'no cap s':>8}  {'cap s':>8}  {'cap/no cap':>10}  chosen"
    ]
    for code, timed in runs.items():
        for dataset in DATASETS:
            (plain, _), (capped, found) = timed[(dataset, BASE)], timed[(dataset, CAPPED)]
            doc["fits"].append(
                {"code": code, "dataset": dataset, "seconds_no_cap": plain,
                 "seconds_cap": capped, "ratio": capped / plain, "chosen_with_cap": found}
            )  # fmt: skip
            lines.append(
                f"{code:4}  {dataset:10}  {plain:8.1f}  {capped:8.1f}  {capped / plain:10.2f}  "
                f"{found}"
            )
    doc["bootstrap"] = [bootstrap_call(n) for n in (300, 7000)]
    lines.append("")
    lines.append(f"{'items':>6}  {'nanquantile ms':>14}  {'quantiles ms':>12}  {'speedup':>7}")
    for b in doc["bootstrap"]:
        lines.append(
            f"{b['items']:6d}  {b['old_ms']:14.2f}  {b['new_ms']:12.3f}  {b['speedup']:7.0f}"
        )
    print("\n".join(lines))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
