"""The six axes on the bundled LLMRouter data (real per-prompt outcomes of nine models, its own
train/test split): a floor on every task, and human review bounded and priced."""

from __future__ import annotations

import pytest

from tradeoff.evals.bundled import bundled_dir
from tradeoff.evals.importers import import_file
from tradeoff.evals.reviewers import Reviewer
from tradeoff.evals.store import Store, open_store
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions

pytestmark = pytest.mark.slow
SPLIT = dict(train_split="train", test_split="test", n_trials=5)


@pytest.fixture(scope="module")
def llmrouter(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = open_store(tmp_path_factory.mktemp("llmrouter") / "l.duckdb")
    import_file(store, bundled_dir() / "llmrouter" / "outcomes.parquet", "llmrouter")
    return store


def test_every_task_keeps_its_floor_while_saving(llmrouter: Store) -> None:
    report = fit_policy(
        llmrouter, FitOptions("llmrouter", "accuracy >= 90% of baseline on every task", **SPLIT)
    )
    assert report.metrics["savings_vs_baseline"] > 0.05
    assert len(report.tasks) == 10  # the test split's tasks, 50 items each
    for row in report.tasks:  # each task's floor, within that task's noise (its interval)
        assert row["kept_ci"] is None or row["kept_ci"][1] >= 0.9, row


def test_review_is_bounded_and_priced(llmrouter: Store) -> None:
    req = "accuracy >= 100% of baseline and human_review <= 10%"
    reviewer = Reviewer("reviewer", cost_usd=0.01)
    report = fit_policy(llmrouter, FitOptions("llmrouter", req, reviewers=(reviewer,), **SPLIT))
    m = report.metrics
    assert m["human_review_ci"][0] <= m["human_review"] <= 0.1
    alone = fit_policy(llmrouter, FitOptions("llmrouter", req.split(" and ")[0], **SPLIT))
    # Reviews beat the same accuracy without them, or the report says why none paid.
    if m["human_review"] > 0:
        assert m["savings_vs_baseline"] > alone.metrics["savings_vs_baseline"]
    else:
        assert any(n.startswith("no request goes to review") for n in report.notes)
