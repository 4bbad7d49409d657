"""Routing at the strict end (issue #27): old vs new fit at 90, 95, 98 and 99% of the baseline.

Old = the fit at commit `OLD_COMMIT` (before the anchored paths, the logistic success model,
one path per distinct verifier and the auto traffic mix's difference test), run from a git
worktree of that commit in a subprocess; new = this tree. Same data, same splits, same seeds.
Per (dataset, share): savings vs the baseline on the held-out items (median and range over the
seeds), the held-out kept share of the baseline's accuracy (median, and the worst seed with its
95% interval), and the worst seed's kept share minus the requirement in held-out standard
errors (below -2 would be a promise broken beyond the noise). References on the same held-out
items: the cheapest oracle (the cheapest routing meeting the requirement knowing every outcome).

Data: `llmrouter` (bundled; its own train/test split, 9 models), `routerarena` (bundled; a
seeded 30% hash split), `thin_tail` (synthetic: a baseline right on most items, cheaper
models near-certain on easy items, so at 98-99% only the tail matters), and `gsm8k_pair` /
`mmlu_pair` (LLMRouter's items of one task with two of its models, `PAIRS`; hash splits).

    python benchmarks/bench_strict.py [--seeds 5] [--datasets llmrouter,...] [--old PATH]
        [--versions old,new] [--reuse results/strict.json]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.policies.synthetic import build_store  # noqa: E402
from tradeoff.evals.bundled import import_bundled  # noqa: E402
from tradeoff.evals.store import Store, open_store  # noqa: E402
from tradeoff.policies.data import load_outcomes  # noqa: E402

OLD_COMMIT = "edd1543"
SHARES = (0.90, 0.95, 0.98, 0.99)
DATASETS = {  # name -> (train split, test split); None: a seeded 30% hash split
    "llmrouter": ("train", "test"),
    "routerarena": (None, None),
    "thin_tail": (None, None),
    "gsm8k_pair": (None, None),
    "mmlu_pair": (None, None),
}
# LLMRouter's items of one task, two of its models: its best, as the baseline, and a cheaper
# one nearly as accurate there (a GSM8K-like and an MMLU-like set).
PAIRS = {
    "gsm8k_pair": ("gsm8k", "llama-3.1-nemotron-51b-instruct", "llama-3.1-8b-instruct"),
    "mmlu_pair": ("mmlu", "llama-3.1-nemotron-51b-instruct", "gemma-2-9b-it"),
}
RESULTS = ROOT / "benchmarks" / "results" / "strict.json"

RUNNER = """
import json, sys, time
from tradeoff.evals.store import open_store
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions
from tradeoff.policies.errors import InfeasibleError
db, jobs = sys.argv[1], json.loads(sys.argv[2])
store = open_store(db)
for job in jobs:
    started = time.perf_counter()
    try:
        r = fit_policy(store, FitOptions(job["dataset"], job["requirement"], seed=job["seed"],
                       train_split=job["train"], test_split=job["test"], save=False))
        m = r.metrics
        out = {"savings": m["savings_vs_baseline"], "kept": m["accuracy_vs_baseline"],
               "kept_ci": m["accuracy_vs_baseline_ci"], "family": r.family,
               "description": r.description}
        cheapest = r.to_dict().get("cheapest_oracle")
        if cheapest:
            out["cheapest_oracle"] = cheapest["savings_vs_baseline"]
    except InfeasibleError:
        out = {"savings": 0.0, "kept": 1.0, "kept_ci": None, "family": "infeasible"}
    out.update(job, seconds=time.perf_counter() - started)
    print(json.dumps(out), flush=True)
"""


def thin_tail(path: Path, n_items: int = 3000, seed: int = 2) -> Store:
    """Three models on 10 tasks: `large` (the baseline, 1.0 per call) right unless an item is
    hard, `medium` (0.25) and `small` (0.05) right on easy items with a few slips; an item's
    difficulty shows in its wording."""
    rng = np.random.default_rng(seed)
    tasks = [f"topic{t}" for t in range(10)]
    per_task = n_items // len(tasks)
    difficulty = rng.gamma(1.0, 1.0, size=n_items)  # most items easy, a thin hard tail
    ability = {"small": 2.0, "medium": 3.2, "large": 4.5}
    words = (["list", "name", "basic"], ["compare", "explain", "relate"], ["prove", "derive"])

    def index(task: str, i: int) -> int:
        return tasks.index(task) * per_task + i

    def prompt(task: str, i: int) -> str:
        d = difficulty[index(task, i)]
        pool = words[0] if d < 1 else words[1] if d < 2.5 else words[2]
        return f"{task} item {i}: {' '.join(rng.choice(pool, size=3))} the answer"

    def score(r: np.random.Generator, task: str, model: str, i: int) -> float:
        logit = ability[model] + 0.3 * tasks.index(task) / 9 - 1.6 * difficulty[index(task, i)]
        return float(r.random() < 1 / (1 + np.exp(-logit)))

    return build_store(
        path, dataset="thin_tail", tasks=dict.fromkeys(tasks, per_task),
        models={"small": 0.05, "medium": 0.25, "large": 1.0}, score=score, prompt=prompt,
        seed=seed,
    )  # fmt: skip


def pair(db: Path, name: str) -> Store:
    """`PAIRS[name]` built from the bundled LLMRouter outcomes in the store at `db`."""
    task, *models = PAIRS[name]
    out = load_outcomes(open_store(db), "llmrouter")
    rows = np.flatnonzero(out.tasks == task)
    cols = [out.models.index(m) for m in models]
    score, cost = out.score[rows][:, cols, 0], out.cost[rows][:, cols, 0]
    prompts = [str(out.prompts[i]) for i in rows]

    return build_store(
        db, dataset=name, tasks={task: len(rows)},
        models={m: float(np.nanmean(cost[:, k])) for k, m in enumerate(models)},
        score=lambda rng, t, model, i: float(np.nan_to_num(score[i, models.index(model)])),
        prompt=lambda t, i: prompts[i],
    )  # fmt: skip


def requirement(share: float) -> str:
    return f"accuracy >= {share:.0%} of baseline"


def run_fits(tree: Path, db: Path, jobs: list[dict]) -> list[dict]:
    """The fits of `jobs` by the code in `tree`, in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(db), json.dumps(jobs)],
        env=env, cwd=tree, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return [json.loads(line) for line in done.stdout.splitlines()]


def stat(values: list[float]) -> dict:
    v = np.array(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def worst(group: list[dict], share: float) -> dict | None:
    """The seed whose kept share is lowest in held-out standard errors from the requirement."""
    out = None
    for f in group:
        if f["kept_ci"] is None:
            continue
        se = (f["kept_ci"][1] - f["kept_ci"][0]) / (2 * 1.96)
        z = (f["kept"] - share) / se if se > 0 else 0.0
        if out is None or z < out["z"]:
            out = {"z": z, "seed": f["seed"], "kept": f["kept"], "kept_ci": f["kept_ci"]}
    return out


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for dataset in DATASETS:
        for share in SHARES:
            entry: dict = {"dataset": dataset, "share": share}
            for version in ("old", "new"):
                group = [
                    r for r in rows
                    if r["dataset"] == dataset and r["share"] == share and r["version"] == version
                ]  # fmt: skip
                if not group:
                    continue
                entry[version] = {
                    "seeds": len(group),
                    "savings": stat([r["savings"] for r in group]),
                    "kept": stat([r["kept"] for r in group]),
                    "worst": worst(group, share),
                    "families": sorted({r["family"] for r in group}),
                    "seconds": stat([r["seconds"] for r in group]),
                }
                oracle = [r["cheapest_oracle"] for r in group if "cheapest_oracle" in r]
                if oracle:
                    entry["cheapest_oracle"] = stat(oracle)
            if "new" in entry or "old" in entry:
                out.append(entry)
    return out


def render(summary: list[dict]) -> str:
    def s(x: dict | None) -> str:
        if not x:
            return "-"
        v = x["savings"]
        return f"{v['median']:6.1%} [{v['min']:.1%}, {v['max']:.1%}]"

    def w(x: dict | None) -> str:
        if not x or not x["worst"]:
            return "-"
        b = x["worst"]
        return f"{b['kept']:.1%} [{b['kept_ci'][0]:.1%}, {b['kept_ci'][1]:.1%}] z {b['z']:+.1f}"

    head = (
        f"{'dataset':12} {'R':>4}  {'old savings (range)':24} {'new savings (range)':24} "
        f"{'old worst seed kept [95% CI]':34} {'new worst seed kept [95% CI]':34} cheapest oracle"
    )
    lines = [head, "-" * len(head)]
    for e in summary:
        oracle = e.get("cheapest_oracle")
        lines.append(
            f"{e['dataset']:12} {e['share']:4.0%}  {s(e.get('old')):24} {s(e.get('new')):24} "
            f"{w(e.get('old')):34} {w(e.get('new')):34} "
            f"{oracle['median']:.1%}"
            if oracle
            else f"{e['dataset']:12} {e['share']:4.0%}  {s(e.get('old')):24} {s(e.get('new')):24} "
            f"{w(e.get('old')):34} {w(e.get('new')):34} -"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--shares", default=",".join(str(s) for s in SHARES))
    parser.add_argument("--old", type=Path, help=f"a worktree at {OLD_COMMIT} (default: made)")
    parser.add_argument("--versions", default="old,new")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="results files whose rows are kept where this run has none (repeatable)",
    )
    args = parser.parse_args()
    names = args.datasets.split(",")
    shares = [float(s) for s in args.shares.split(",")]
    versions = args.versions.split(",")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "strict.duckdb"
        store = open_store(db)
        import_bundled(store)
        if "thin_tail" in names:
            thin_tail(db)
        for name in PAIRS:
            if name in names:
                pair(db, name)
        store = open_store(db)
        jobs = [
            {"dataset": d, "share": s, "seed": seed, "requirement": requirement(s),
             "train": DATASETS[d][0], "test": DATASETS[d][1]}
            for d in names for s in shares for seed in range(args.seeds)
        ]  # fmt: skip
        rows: list[dict] = []
        if "old" in versions:
            old = args.old
            made = old is None
            if made:
                old = Path(tmp) / "old"
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), OLD_COMMIT],
                    check=True, capture_output=True,
                )  # fmt: skip
            assert old is not None
            rows += [r | {"version": "old"} for r in run_fits(old, db, jobs)]
            if made:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)])
        if "new" in versions:
            rows += [r | {"version": "new"} for r in run_fits(ROOT, db, jobs)]
        del store

    def key(r: dict) -> tuple:
        return r["dataset"], r["share"], r["seed"], r["version"]

    for path in args.reuse:
        have = {key(r) for r in rows}
        rows += [r for r in json.loads(path.read_text())["rows"] if key(r) not in have]
    summary = summarize(rows)
    print(render(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "old_commit": OLD_COMMIT,
                "seeds": args.seeds,
                "shares": shares,
                "summary": summary,
                "rows": rows,
                "seconds": time.perf_counter() - started,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
