"""fit_policy on synthetic stores (real DuckDB files) where the right answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.policies.synthetic import build_store, specialist_store
from tradeoff.evals.store import Store
from tradeoff.policies.artifact import stored_artifact
from tradeoff.policies.errors import DataError, InfeasibleError
from tradeoff.policies.families.base import RouteRequest
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions

TRIALS = 30


@pytest.fixture(scope="module")
def specialist(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return specialist_store(tmp_path_factory.mktemp("fit") / "s.duckdb")


def test_task_table_routes_the_easy_task_to_the_cheap_model(specialist: Store) -> None:
    report = fit_policy(
        specialist,
        FitOptions("synth", "accuracy >= 85% of baseline", baseline="strong", n_trials=TRIALS),
    )
    policy = report.artifact.policy()  # type: ignore[union-attr]
    assert report.family == "task_table"
    plans = policy.plan_many([RouteRequest("q", "A"), RouteRequest("q", "B")])
    assert [p.models for p in plans] == [("cheap",), ("strong",)]
    m = report.metrics
    assert 0.45 < m["savings_vs_baseline"] < 0.5  # half the traffic at a tenth of the price
    assert m["accuracy_vs_baseline"] > 0.9
    assert m["models_used"] == pytest.approx({"cheap": 0.5, "strong": 0.5}, abs=0.1)
    assert report.sentence().startswith("keeps ")
    assert f"on {m['n']:,} held-out requests" in report.sentence()


def test_the_fit_never_reads_test_rows(tmp_path: Path) -> None:
    """Scrambling the outcomes of the test items changes the report, never the policy."""
    test_split = lambda i: "test" if i % 4 == 0 else "train"  # noqa: E731
    kwargs = dict(train_split="train", test_split="test", n_trials=TRIALS, baseline="strong")

    def fit(seed: int, scramble: bool) -> tuple[dict, dict, list[str]]:
        def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
            if scramble and i % 2 == 0 and task == "A":  # items 0, 4, ... of A are test items
                return float(rng.random() < 0.5)
            p = {"A": {"cheap": 0.9, "strong": 0.9}, "B": {"cheap": 0.2, "strong": 0.9}}
            return float(rng.random() < p[task][model])

        store = build_store(
            tmp_path / f"{seed}{scramble}.duckdb",
            tasks={"A": 160, "B": 160},
            models={"cheap": 0.001, "strong": 0.01},
            score=score,
            split=lambda i: test_split(i * 2),  # A: items 0, 2, ... -> i*2 % 4 == 0 on even i
        )
        r = fit_policy(store, FitOptions("synth", "accuracy >= 90% of baseline", **kwargs))  # type: ignore[arg-type]
        return r.artifact.params, r.metrics, r.fit_item_ids  # type: ignore[union-attr]

    params, metrics, fit_ids = fit(0, scramble=False)
    params2, metrics2, fit_ids2 = fit(0, scramble=True)
    assert params == params2 and fit_ids == fit_ids2
    assert metrics["accuracy"] != metrics2["accuracy"]
    assert not any(i.startswith("A-") and int(i[2:]) % 2 == 0 for i in fit_ids)


def test_deterministic_for_a_seed(specialist: Store) -> None:
    runs = [
        fit_policy(
            specialist, FitOptions("synth", "accuracy >= 80% of baseline", seed=3, n_trials=TRIALS)
        )
        for _ in range(2)
    ]
    a, b = (r.artifact for r in runs)
    assert a is not None and b is not None
    assert (a.family, a.params, a.metrics) == (b.family, b.params, b.metrics)


def test_fitted_policy_is_stored(specialist: Store) -> None:
    report = fit_policy(
        specialist, FitOptions("synth", "accuracy >= 0.5", n_trials=TRIALS, name="stored-one")
    )
    again = stored_artifact(specialist, "stored-one")
    assert again.params == report.artifact.params  # type: ignore[union-attr]
    assert again.metrics["n"] == report.metrics["n"]
    # The bound it was accepted at travels with it (the dashboard's "meets" reads it).
    accepted = again.metrics["acceptance"]
    assert accepted["bounds"] == report.acceptance["bounds"]
    assert accepted["bounds"]["accuracy >= 0.5"] >= 0.5
    assert accepted["items"] == report.n_fit and accepted["keeps_baseline"] is False


def test_infeasible_requirement_says_so_and_shows_the_closest_points(specialist: Store) -> None:
    with pytest.raises(InfeasibleError) as info:
        fit_policy(specialist, FitOptions("synth", "accuracy >= 0.99", n_trials=TRIALS))
    message = str(info.value)
    assert "no policy meets" in message and "closest:" in message
    assert "short by" in message and "\n" not in message
    assert info.value.exit_code == 1


def test_cost_ceiling_with_maximize_accuracy(specialist: Store) -> None:
    report = fit_policy(
        specialist,
        FitOptions(
            "synth",
            "cost <= 70% of baseline",
            baseline="strong",
            objective="maximize accuracy",
            n_trials=TRIALS,
        ),
    )
    assert report.metrics["cost_per_request_usd"] <= 0.7 * 0.01
    assert report.metrics["accuracy"] > 0.8  # the task table, not the cheap model alone


def test_learned_router_finds_the_hard_prompts(tmp_path: Path) -> None:
    """One task; prompts that mention 'proof' defeat the cheap model: only a per-prompt router
    can save here."""

    def prompt(task: str, i: int) -> str:
        return f"prove the theorem number {i} with a formal proof" if i % 2 else f"add {i} and 3"

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        hard = i % 2 == 1
        p = 0.9 if model == "strong" or not hard else 0.1
        return float(rng.random() < p)

    store = build_store(
        tmp_path / "l.duckdb",
        tasks={"only": 400},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        prompt=prompt,
    )
    report = fit_policy(
        store,
        FitOptions("synth", "accuracy >= 85% of baseline", baseline="strong", n_trials=TRIALS),
    )
    assert report.family == "learned"
    assert report.skipped["task_table"] == "the dataset has a single task"
    assert report.metrics["savings_vs_baseline"] > 0.3


def test_cascade_with_a_verifier_on_recorded_responses(tmp_path: Path) -> None:
    """The cheap model states an answer only when it is right: a cascade escalates the rest."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "strong" or i % 3 != 0)

    def response(task: str, model: str, i: int, value: float) -> str:
        return "The answer is 4." if value else "I am not sure."

    store = build_store(
        tmp_path / "c.duckdb",
        tasks={"q": 150},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        responses=response,
    )
    report = fit_policy(
        store,
        # ~105 training items, the cascade right on all: an exact binomial bound vouches for
        # about 97% at 95% confidence, so 95% can be promised, 98% (once asked here) cannot
        FitOptions("synth", "accuracy >= 95% of baseline", baseline="strong", n_trials=TRIALS),
    )
    assert report.family == "cascade"
    params = report.artifact.params  # type: ignore[union-attr]
    assert params["models"] == ["cheap", "strong"] and params["verifier"] == "answer_parses"
    plan = report.artifact.policy().plan(RouteRequest("q", "q"))  # type: ignore[union-attr]
    assert plan.models == ("cheap", "strong") and plan.verifier == "answer_parses"
    # two thirds stop at the cheap model; a third pays for both calls
    assert report.metrics["cost_per_request_usd"] == pytest.approx(0.001 + 0.01 / 3, rel=0.25)
    assert "best_of_k" in report.skipped
    # Served streamed, the verification delays the first token; the report says so.
    assert any("time to first token includes" in n for n in report.notes)


def test_families_without_their_data_are_skipped_with_a_reason(specialist: Store) -> None:
    report = fit_policy(specialist, FitOptions("synth", "accuracy >= 0.5", n_trials=TRIALS))
    assert "no recorded responses" in report.skipped["cascade"]
    assert "no recorded responses" in report.skipped["best_of_k"]


def test_latency_clause_without_latencies_is_a_clear_error(specialist: Store) -> None:
    with pytest.raises(DataError, match="no recorded latencies"):
        fit_policy(specialist, FitOptions("synth", "p95_latency <= 2s", n_trials=TRIALS))


def test_unknown_split_and_dataset_are_clear_errors(specialist: Store) -> None:
    with pytest.raises(DataError, match="no items with split 'test'"):
        fit_policy(
            specialist,
            FitOptions("synth", "accuracy >= 0.5", train_split="train", test_split="test"),
        )
    with pytest.raises(DataError, match="has no items"):
        fit_policy(specialist, FitOptions("nope", "accuracy >= 0.5"))
    with pytest.raises(DataError, match="model 'gpt-9'"):
        fit_policy(specialist, FitOptions("synth", "accuracy >= 0.5", baseline="gpt-9"))


def test_best_of_k_when_repeats_are_recorded(tmp_path: Path) -> None:
    """The cheap model is right on half its samples, independently, and says so only when right:
    three cheap samples (then the strong model if none passes) beat one cascade step."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "strong" or rng.random() < 0.5)

    def response(task: str, model: str, i: int, value: float) -> str:
        return "Final answer: 4" if value else "hmm"

    store = build_store(
        tmp_path / "k.duckdb",
        tasks={"q": 300},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        responses=response,
        samples=3,
    )
    report = fit_policy(
        store, FitOptions("synth", "accuracy >= 95% of baseline", baseline="strong", n_trials=60)
    )
    assert report.family == "best_of_k"
    params = report.artifact.params  # type: ignore[union-attr]
    assert params["model"] == "cheap" and params["k"] == 3 and params["fallback"] == ["strong"]
    # 3 cheap samples always, the strong model for the 1/8 where none passes
    assert report.metrics["cost_per_request_usd"] == pytest.approx(0.003 + 0.01 / 8, rel=0.3)
    # repeats disagree half the time: consistency, hence reliability, is below 1
    assert report.singles["cheap"]["reliability"] < 0.9


def test_latency_bound_is_respected(tmp_path: Path) -> None:
    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(rng.random() < (0.9 if model == "slow" else 0.7))

    store = build_store(
        tmp_path / "lat.duckdb",
        tasks={"q": 200},
        models={"fast": 0.001, "slow": 0.001},
        score=score,
        latency=lambda model: 3000.0 if model == "slow" else 200.0,
    )
    report = fit_policy(
        store,
        FitOptions("synth", "p95_latency <= 2s", objective="maximize accuracy", n_trials=TRIALS),
    )
    assert report.artifact.params == {"model": "fast"}  # type: ignore[union-attr]
    assert report.metrics["p95_latency_ms"] == 200.0


def test_a_model_measured_on_few_items_is_left_out_with_a_note(tmp_path: Path) -> None:
    store = specialist_store(tmp_path / "cov.duckdb", n=100)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO outcomes (dataset, item_id, model, score, cost_usd) "
            "SELECT dataset, item_id, 'newcomer', 1.0, 0.0001 FROM items LIMIT 10"
        )
    report = fit_policy(store, FitOptions("synth", "accuracy >= 0.5", n_trials=TRIALS))
    assert "newcomer" not in report.singles
    assert any("newcomer has outcomes for only 5%" in note for note in report.notes)
    assert report.metrics["n"] + report.n_fit == 200
