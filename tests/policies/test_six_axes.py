"""Autonomy (a human review tier, `human_review`) and complexity (`on every task`) in the fit,
on synthetic stores (real DuckDB files) whose right answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tradeoff
from tests.policies.synthetic import build_store
from tradeoff.evals.reviewers import Reviewer
from tradeoff.evals.store import Store
from tradeoff.policies.errors import DataError, InfeasibleError
from tradeoff.policies.families.base import RouteRequest
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions
from tradeoff.policies.replay.evaluate import replay_artifact

SPLIT = dict(train_split="train", test_split="test", n_trials=5, baseline="strong")


def _split(i: int) -> str:
    return "test" if i % 3 == 0 else "train"


@pytest.fixture(scope="module")
def hidden_task(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """`cheap` matches `strong` on A and B and fails task C (a tenth of the traffic): "90% of
    baseline" holds on the mix with C on `cheap`, but not on C."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"cheap": {"A": 0.9, "B": 0.9, "C": 0.5}, "strong": {"A": 0.9, "B": 0.9, "C": 0.9}}
        return float(rng.random() < p[model][task])

    return build_store(
        tmp_path_factory.mktemp("tasks") / "t.duckdb",
        tasks={"A": 600, "B": 600, "C": 150},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        split=_split,
    )


@pytest.fixture(scope="module")
def hard_task(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Both models get task `easy` right; on `hard` `cheap` fails and `strong` gets half."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"cheap": {"easy": 1.0, "hard": 0.0}, "strong": {"easy": 1.0, "hard": 0.5}}
        return float(rng.random() < p[model][task])

    return build_store(
        tmp_path_factory.mktemp("review") / "r.duckdb",
        tasks={"easy": 900, "hard": 100},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        split=_split,
    )


def _task(report_tasks: list[dict], name: str) -> dict:
    return next(t for t in report_tasks if t["task"] == name)


def test_every_task_keeps_the_floor_on_each_task(hidden_task: Store) -> None:
    overall = fit_policy(hidden_task, FitOptions("synth", "accuracy >= 90% of baseline", **SPLIT))
    each = fit_policy(
        hidden_task,
        FitOptions("synth", "accuracy >= 90% of baseline on every task", **SPLIT),
    )
    # The average promise hides task C; the per-task one keeps it.
    assert _task(overall.tasks, "C")["kept"] < 0.7
    c = _task(each.tasks, "C")
    assert c["kept_ci"][1] >= 0.9 and c["kept"] > 0.8
    for row in each.tasks:  # every task within its own noise of the floor, held-out
        assert row["kept_ci"][1] >= 0.9, row
    assert each.metrics["savings_vs_baseline"] > 0.5  # A and B still go to `cheap`
    policy = each.artifact.policy()  # type: ignore[union-attr]
    assert policy.plan(RouteRequest("q", "C")).models[0] == "strong"
    bounds = each.acceptance["bounds"]["accuracy >= 90% of baseline on every task"]
    assert bounds >= 0.9


def test_report_shows_every_task_with_intervals(hidden_task: Store) -> None:
    report = fit_policy(hidden_task, FitOptions("synth", "accuracy >= 90% of baseline", **SPLIT))
    doc = report.to_dict()
    assert {t["task"] for t in doc["tasks"]} == {"A", "B", "C"}
    row = doc["tasks"][0]  # lowest kept first
    assert set(row) >= {"task", "n", "kept", "kept_ci", "savings", "savings_ci", "too_small"}
    assert row["task"] == "C" and row["n"] == 50 and not row["too_small"]
    assert row["kept_ci"][0] <= row["kept"] <= row["kept_ci"][1]
    assert "per task, on the held-out items" in report.render()


def test_a_task_too_small_to_test_is_flagged(tmp_path: Path) -> None:
    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(rng.random() < (0.9 if model == "strong" or task == "A" else 0.3))

    store = build_store(
        tmp_path / "small.duckdb",
        tasks={"A": 600, "tiny": 12},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        split=_split,
    )
    report = fit_policy(
        store, FitOptions("synth", "accuracy >= 95% of baseline on every task", **SPLIT)
    )
    tiny = _task(report.tasks, "tiny")
    assert tiny["too_small"] and tiny["n"] == 4
    # A task too small to test is never promised on `cheap`: it stays on the baseline.
    assert report.artifact.policy().plan(RouteRequest("q", "tiny")).models[0] == "strong"  # type: ignore[union-attr]


def test_a_reviewer_takes_the_hard_task_within_its_bound(hard_task: Store) -> None:
    req = "accuracy >= 100% of baseline and human_review <= 15%"
    reviewer = Reviewer("reviewer", cost_usd=0.002)
    report = fit_policy(hard_task, FitOptions("synth", req, reviewers=(reviewer,), **SPLIT))
    m = report.metrics
    assert 0.05 < m["human_review"] <= 0.15  # held-out, within the bound
    assert m["human_review_ci"][0] <= m["human_review"] <= m["human_review_ci"][1]
    assert m["accuracy_vs_baseline"] >= 1.0
    assert report.to_dict()["human_review"] == m["human_review"]
    policy = report.artifact.policy()  # type: ignore[union-attr]
    assert policy.plan(RouteRequest("q", "hard")).models[0] == "reviewer"
    assert any("go to review at $0.002" in n for n in report.notes)
    # Without the reviewer the same accuracy costs more (or is out of reach).
    try:
        alone = fit_policy(hard_task, FitOptions("synth", req.split(" and ")[0], **SPLIT))
        assert alone.metrics["savings_vs_baseline"] < m["savings_vs_baseline"]
    except InfeasibleError as exc:  # no policy at all without review
        assert "no policy meets" in str(exc)
    # Replaying the stored policy re-creates the reviewer it was fitted with.
    doc = replay_artifact(hard_task, report.artifact, split="test")  # type: ignore[arg-type]
    assert doc["human_review"] == pytest.approx(m["human_review"])


def test_a_dear_reviewer_is_not_used_and_the_report_says_why(hard_task: Store) -> None:
    req = "accuracy >= 90% of baseline and human_review <= 10%"
    reviewer = Reviewer("reviewer", cost_usd=5.0)
    report = fit_policy(hard_task, FitOptions("synth", req, reviewers=(reviewer,), **SPLIT))
    assert report.metrics["human_review"] == 0.0
    assert any(n.startswith("no request goes to review") for n in report.notes)


def test_human_review_needs_a_human_tier(hard_task: Store) -> None:
    with pytest.raises(DataError, match="--human-cost"):
        fit_policy(hard_task, FitOptions("synth", "human_review <= 10%", **SPLIT))


def test_cli_human_cost_and_json(
    hard_task: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(hard_task.path)  # type: ignore[attr-defined]
    argv = ["fit", "--dataset", "synth", "--baseline", "strong", "--trials", "3"]
    argv += ["--train-split", "train", "--test-split", "test", "--db", db, "--json"]
    argv += ["--config", str(tmp_path / "none.yaml")]
    code = tradeoff.main(
        [
            *argv,
            "--require",
            "accuracy >= 100% of baseline and human_review <= 15%",
            "--human-cost",
            "0.002",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert 0 < doc["human_review"] <= 0.15 and doc["tasks"]
    code = tradeoff.main([*argv, "--require", "human_review <= 10%"])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "--human-cost" in err


def test_a_configured_reviewer_is_a_candidate(
    hard_task: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "model_list:\n  - {model_name: rev, tier: human, review_cost_usd: 0.002, accuracy: 0.99}\n"
    )
    db = str(hard_task.path)  # type: ignore[attr-defined]
    code = tradeoff.main(
        ["fit", "--dataset", "synth", "--baseline", "strong", "--trials", "3", "--db", db,
         "--train-split", "train", "--test-split", "test", "--config", str(config), "--json",
         "--require", "accuracy >= 100% of baseline and human_review <= 15%"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "rev" in json.loads(out.out)["models_used"]


def test_a_reviewer_measured_by_verdicts_keeps_its_measurements(hard_task: Store) -> None:
    from tradeoff.policies.data import load_outcomes
    from tradeoff.policies.human import with_reviewers

    outcomes = load_outcomes(hard_task, "synth")
    reviewer = Reviewer("reviewer", cost_usd=0.5, accuracy=0.9)
    assumed = with_reviewers(outcomes, [reviewer], default_draft=0)
    j = assumed.models.index("reviewer")
    assert assumed.human is not None and assumed.human.tolist() == [False, False, True]
    assert assumed.score[:, j, 0].tolist() == [0.9] * outcomes.n
    assert np.isnan(assumed.score[:, j, 1:]).all()  # one review, never k samples
    assert assumed.cost[:, j, 0] == pytest.approx(outcomes.cost[:, 0, 0] + 0.5)
    # Verdicts on five requests: measured there, assumed elsewhere.
    traffic = assumed.subset(np.arange(outcomes.n))
    traffic.score[:, j, 0] = np.nan
    traffic.score[:5, j, 0] = 0.0
    measured = with_reviewers(traffic, [reviewer], default_draft=0)
    assert measured.models == assumed.models
    assert measured.score[:5, j, 0].tolist() == [0.0] * 5
    assert measured.score[5:, j, 0].tolist() == [0.9] * (outcomes.n - 5)


def test_the_acceptance_sentence_says_every_task(hidden_task: Store) -> None:
    req = "accuracy >= 90% of baseline on every task"
    report = fit_policy(hidden_task, FitOptions("synth", req, **SPLIT))
    assert "accuracy on every task (the requirement: 90%)" in report.sentence()
