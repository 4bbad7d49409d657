"""What fit, replay and frontier print: no claim beyond the evidence (issue 15's words)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tradeoff
from tests.policies.synthetic import build_store, specialist_store
from tradeoff.evals.store import Store
from tradeoff.policies.errors import DataError
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions
from tradeoff.policies.replay.frontier import compute_frontier
from tradeoff.policies.replay.report import acceptance_clause


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = tradeoff.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The specialist store with a named train/test split (every fourth item is test)."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"A": {"cheap": 0.9, "strong": 0.9}, "B": {"cheap": 0.2, "strong": 0.9}}[task][model]
        return float(rng.random() < p)

    return build_store(
        tmp_path_factory.mktemp("named") / "n.duckdb",
        tasks={"A": 200, "B": 200},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        split=lambda i: "test" if i % 4 == 0 else "train",
    )


def test_replay_of_all_items_never_calls_fitting_items_held_out(
    named: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = str(tmp_path / "p.json")
    db = str(named.path)
    require = ["--require", "accuracy >= 85% of baseline", "--baseline", "strong"]
    assert run(capsys, "fit", "--dataset", "synth", *require, "--out", policy, "--db", db)[0] == 0
    code, out, _ = run(capsys, "replay", "--policy", policy, "--split", "all", "--db", db)
    assert code == 0
    assert "held-out requests" not in out and "300 of them used to fit this policy" in out
    doc = json.loads(
        run(capsys, "replay", "--policy", policy, "--split", "all", "--db", db, "--json")[1]
    )
    assert doc["held_out"] is False and doc["n_fitting_items"] == 300
    assert "held-out requests" not in doc["sentence"]
    # The default (the fit's own test split) is held-out, and says so.
    doc = json.loads(run(capsys, "replay", "--policy", policy, "--db", db, "--json")[1])
    assert doc["held_out"] is True and doc["n_fitting_items"] == 0 and doc["n"] == 100
    assert doc["sentence"].endswith("on 100 held-out requests")


def test_fit_defaults_to_the_named_test_split_and_frontier_agrees(named: Store) -> None:
    report = fit_policy(
        named, FitOptions("synth", "accuracy >= 85% of baseline", baseline="strong")
    )
    assert report.split == "test" and report.metrics["n"] == 100
    frontier = compute_frontier(named, "synth")
    assert frontier.split == "test" and frontier.n == 100
    baseline = next(p for p in frontier.points if p.name == "strong")
    assert baseline.accuracy == pytest.approx(report.baseline_metrics["accuracy"])


def test_frontier_bad_split_names_an_option_it_has(named: Store) -> None:
    with pytest.raises(DataError) as info:
        compute_frontier(named, "synth", split="validation")
    message = str(info.value)
    assert "splits here: test, train" in message and "--split" in message
    assert "--test-fraction" not in message


def test_the_sentence_says_acceptance_rests_on_a_training_bound(named: Store) -> None:
    report = fit_policy(
        named, FitOptions("synth", "accuracy >= 85% of baseline", baseline="strong")
    )
    text = report.sentence()
    assert "(95% CI " in text and "on 100 held-out requests; accepted because, on the 300 " in text
    assert "training items (cross-fitted), we are " in text
    bound = report.acceptance["bounds"]["accuracy >= 85% of baseline"]
    assert bound >= 0.85
    confidence = 1 - report.acceptance["level"]
    assert (
        f"{confidence:.1%} confident it keeps at least {bound:.1%} of strong's accuracy "
        "(the requirement: 85%)"
    ) in text
    assert "confidence bound" not in text  # no unexplained level next to accuracy figures
    if confidence > 0.9505:
        assert "above 95% because the search tried several candidates" in text


def test_the_acceptance_clause_says_each_bound_in_plain_words() -> None:
    clause = acceptance_clause(
        {
            "items": 5489,
            "level": 0.022,
            "bounds": {"accuracy >= 95% of baseline": 0.9504, "p95_latency <= 2s": 1830.0},
        },
        "gpt-4o",
    )
    assert clause == (
        "accepted because, on the 5,489 training items (cross-fitted), we are 97.8% confident "
        "it keeps at least 95.0% of gpt-4o's accuracy (the requirement: 95%) and its p95 "
        "latency is at most 1.83s (the requirement: 2s); the confidence is above 95% because "
        "the search tried several candidates"
    )
    single = acceptance_clause(
        {"items": 41, "level": 0.05, "bounds": {"cost <= $0.002": 0.0011}}, "x"
    )
    assert single.endswith("its cost per request is at most $0.0011 (the requirement: $0.002)")


def test_the_description_counts_the_models_it_routes_to(named: Store) -> None:
    report = fit_policy(
        named, FitOptions("synth", "accuracy >= 85% of baseline", baseline="strong")
    )
    used = len(report.metrics["models_used"])
    assert f"routing to {used} models on the held-out items" in report.description


def test_keeping_the_baseline_reads_as_such(tmp_path: Path) -> None:
    """The cheapest model is also the most accurate: nothing cheaper to route to."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(rng.random() < (0.9 if model == "cheap" else 0.5))

    store = build_store(
        tmp_path / "b.duckdb",
        tasks={"A": 150, "B": 150},
        models={"cheap": 0.001, "dear": 0.01},
        score=score,
    )
    report = fit_policy(store, FitOptions("synth", "accuracy >= 95% of baseline"))
    text = report.sentence()
    assert text.startswith("is the baseline itself, cheap: no cheaper policy meets")
    assert "100.0%" not in text and "same cost" not in text
    assert "keep cheap" in report.render()


def test_few_held_out_items_get_a_warning(tmp_path: Path) -> None:
    store = specialist_store(tmp_path / "tiny.duckdb", n=40)
    report = fit_policy(store, FitOptions("synth", "accuracy >= 0.5", test_fraction=0.2))
    assert report.metrics["n"] < 100
    assert f"warning: only {report.metrics['n']} held-out items" in report.render()
    big = fit_policy(
        specialist_store(tmp_path / "big.duckdb", n=400), FitOptions("synth", "accuracy >= 0.5")
    )
    assert "warning: only" not in big.render()


def test_minimize_latency_without_latencies_names_the_objective(named: Store) -> None:
    with pytest.raises(DataError) as info:
        fit_policy(named, FitOptions("synth", "accuracy >= 0.5", objective="minimize latency"))
    message = str(info.value)
    assert "clause" not in message and "objective" in message and "no recorded latencies" in message


def test_a_tiny_dataset_keeps_the_baseline_rather_than_failing(tmp_path: Path) -> None:
    """Too few items to promise anything cheaper: the baseline meets "95% of itself" anyway."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(i % 7 == 0 if model == "strong" else i % 11 == 0)

    store = build_store(
        tmp_path / "t.duckdb",
        tasks={"A": 10, "B": 10},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
    )
    report = fit_policy(
        store,
        FitOptions("synth", "accuracy >= 95% of baseline", baseline="strong", families=("single",)),
    )
    assert report.keeps_baseline and report.sentence().startswith("is the baseline itself")
