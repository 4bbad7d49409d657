"""`tradeoff demo`: the bundled outcome data, a fitted policy, the answer in one sentence.

No keys, no network: the outcomes were measured by others and ship with tradeoff.
"""

from __future__ import annotations

from collections.abc import Callable
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


def run_demo(
    store: Store,
    seed: int = 0,
    n_trials: int = 20,
    *,
    on_stage: Callable[[str], None] = lambda stage: None,
    on_report: Callable[[str, FitReport], None] = lambda dataset, report: None,
) -> DemoResult:
    """Import the bundled data into `store`, then fit every bundled dataset, storing each policy
    as `demo-<dataset>`. `on_stage` hears each stage as it starts, `on_report` each fit's
    report as soon as it is done.

    The baseline is each dataset's most accurate single model on its training items, so the
    requirement reads "at least 95% of the best single model's accuracy, at the least cost".
    """
    from tradeoff.evals.bundled import import_bundled  # the data engineer's importer; heavy imports

    on_stage(f"importing the bundled outcome data into {store}")
    summaries = import_bundled(store)
    reports = {}
    for dataset, (train, test) in DEMO_DATASETS.items():
        on_stage(f"fitting {dataset}: {n_trials} Optuna trials per family and fold, then the test")
        options = FitOptions(
            dataset,
            DEMO_REQUIREMENT,
            seed=seed,
            train_split=train,
            test_split=test,
            n_trials=n_trials,
            name=policy_name(dataset),
        )
        reports[dataset] = fit_policy(store, options)
        on_report(dataset, reports[dataset])
    return DemoResult(reports, [s.dataset for s in summaries])


def policy_name(dataset: str) -> str:
    """The name the demo stores a dataset's policy under (`serve --policy NAME` serves it)."""
    return f"demo-{dataset}"


def next_steps(db_flag: str) -> list[str]:
    served = policy_name("llmrouter")
    return [
        f"tradeoff replay --policy {served}{db_flag}      # the stored policy, on held-out items",
        f"tradeoff frontier --dataset llmrouter{db_flag}   # every cost/accuracy point",
        f'tradeoff fit --dataset llmrouter --require "accuracy >= 90% of baseline" '
        f"--train-split train --test-split test --out policy.json{db_flag}",
        f"tradeoff serve --policy {served} --config models.yaml{db_flag}"
        "   # models.yaml maps the policy's models to endpoints (README)",
        f"tradeoff dashboard{db_flag}",
    ]
