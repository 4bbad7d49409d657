"""`tradeoff demo`: the bundled outcome data, a fitted policy, the answer in one sentence.

No keys, no network: the outcomes were measured by others and ship with tradeoff.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradeoff.evals.store import Store
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions
from tradeoff.policies.replay.report import FitReport

DEMO_REQUIREMENT = "accuracy >= 95% of baseline"
# dataset -> (train split, test split); None: a seeded 30% hash split (the data has no split)
DEMO_DATASETS: dict[str, tuple[str | None, str | None]] = {
    "llmrouter": ("train", "test"),
    "routerarena": (None, None),
}


@dataclass(frozen=True)
class DemoResult:
    reports: dict[str, FitReport]
    imported: list[str]


def run_demo(store: Store, seed: int = 0, n_trials: int = 20) -> DemoResult:
    """Import the bundled data into `store`, then fit every bundled dataset.

    The baseline is each dataset's most accurate single model on its training items, so the
    requirement reads "at least 95% of the best single model's accuracy, at the least cost".
    """
    from tradeoff.evals.bundled import import_bundled  # the data engineer's importer; heavy imports

    summaries = import_bundled(store)
    reports = {}
    for dataset, (train, test) in DEMO_DATASETS.items():
        options = FitOptions(
            dataset,
            DEMO_REQUIREMENT,
            seed=seed,
            train_split=train,
            test_split=test,
            n_trials=n_trials,
            name=f"demo-{dataset}",
        )
        reports[dataset] = fit_policy(store, options)
    return DemoResult(reports, [s.dataset for s in summaries])


def next_steps(db_flag: str) -> list[str]:
    return [
        f"tradeoff frontier --dataset llmrouter{db_flag}",
        f'tradeoff fit --dataset llmrouter --require "accuracy >= 90% of baseline" '
        f"--train-split train --test-split test --out policy.json{db_flag}",
        f"tradeoff replay --policy policy.json{db_flag}",
        "tradeoff route --policy policy.json --input prompts.jsonl",
        "tradeoff serve --policy policy.json --config models.yaml"
        "   # models.yaml maps the policy's models to endpoints (README)",
        f"tradeoff dashboard{db_flag}",
    ]
