"""Refit reads the regime the monitor accepts (never the pairs from before a detected change),
and traffic where each request measured only some of the models."""

from __future__ import annotations

from pathlib import Path

from tradeoff.evals.store import Store, open_store
from tradeoff.evals.store.outcomes import (
    insert_items,
    insert_outcomes,
    item_table,
    outcome_table,
    record_dataset,
    record_models,
)
from tradeoff.policies.artifact import PolicyArtifact, store_artifact
from tradeoff.policies.data import load_outcomes
from tradeoff.policies.families.base import RouteRequest, create_policy
from tradeoff.policies.loop.promote import promotion_test
from tradeoff.policies.loop.refit import refit_policy
from tradeoff.policies.loop.traffic import GradedPair, write_pairs
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import append_event, now, resolve, serving


def stored(path: Path) -> Store:
    store = open_store(path)
    artifact = PolicyArtifact.from_policy(
        "desk",
        create_policy("single", {"model": "cheap"}),
        requirement="accuracy >= 95% of baseline",
        baseline="strong",
    )
    store_artifact(store, artifact)
    return store


def pairs(store: Store, agree: list[float], offset: int = 0) -> None:
    current = serving(store, "desk")
    assert current is not None
    write_pairs(
        store,
        [
            GradedPair(
                request_id=f"req-{offset + i:05d}",
                policy="desk",
                version=current.version,
                epoch=current.epoch,
                policy_id=current.policy_id,
                graded_at=now(),
                grader="agreement",
                routed_model="cheap",
                baseline_model="strong",
                routed_score=r,
                baseline_score=1.0,
                is_free=False,
                routed_cost_usd=1e-6,
                baseline_cost_usd=1e-5,
                shadow_cost_usd=1e-5,
                task="",
                prompt_sha256=None,
            )
            for i, r in enumerate(agree)
        ],
    )


def test_a_refit_on_the_changed_regime_routes_away_from_the_broken_model(tmp_path: Path) -> None:
    store = stored(tmp_path / "s.duckdb")
    pairs(store, [1.0] * 100)
    pairs(store, [0.0] * 80, offset=100)  # cheap broke: the monitor finds the change
    result = refit_policy(store, "desk", promote_it=True, n_trials=10)
    assert result.data["since_pair"] > 0 and result.data["traffic_pairs"] < 180
    assert result.promoted, result.reason
    assert result.fit["description"] == "single strong"
    assert serving(store, "desk").version == 2  # type: ignore[union-attr]


def test_a_proxys_alarm_outranks_pairs_not_written_yet(tmp_path: Path) -> None:
    store = stored(tmp_path / "s.duckdb")
    pairs(store, [1.0] * 100)  # the store has only the good pairs so far
    with store.transaction() as con:
        append_event(con, "desk", 1, "violated", {"since_pair": 100})
    result = refit_policy(store, "desk", promote_it=True, n_trials=10)
    assert not result.promoted and "no graded traffic" in result.reason
    assert serving(store, "desk").version == 1  # type: ignore[union-attr]


def three_models(path: Path) -> Store:
    """A policy fitted on an eval set routes math to `calc`, chat to `chatty` (baseline
    `strong`): its traffic pairs each hold one of the two with the baseline."""
    store = open_store(path)
    items, outcomes = [], []
    for i in range(80):
        task = "math" if i % 2 else "chat"
        items.append({"dataset": "evalset", "item_id": f"e{i}", "task": task, "prompt": "q"})
        right = {"strong": 1.0, "calc": float(task == "math"), "chatty": float(task == "chat")}
        for model, score in right.items():
            cost = 1e-5 if model == "strong" else 1e-6
            outcomes.append(
                {"dataset": "evalset", "item_id": f"e{i}", "model": model, "score": score,
                 "cost_usd": cost, "params_hash": "", "sample": 0, "run_id": "eval"}
            )  # fmt: skip
    with store.transaction() as con:
        record_dataset(con, "evalset", "test")
        record_models(con, ["strong", "calc", "chatty"], "test")
        insert_items(con, item_table(items))
        insert_outcomes(con, outcome_table(outcomes), on_conflict="keep")
    policy = create_policy("task_table", {"table": {"math": "calc", "chat": "chatty"},
                                          "default": "strong"})  # fmt: skip
    artifact = PolicyArtifact.from_policy(
        "desk", policy, requirement="accuracy >= 95% of baseline", baseline="strong",
        dataset="evalset",
    )  # fmt: skip
    store_artifact(store, artifact)
    return store


def routed_pairs(store: Store, n: int) -> None:
    current = serving(store, "desk")
    assert current is not None
    write_pairs(
        store,
        [
            GradedPair(
                request_id=f"req-{i:05d}",
                policy="desk",
                version=current.version,
                epoch=current.epoch,
                policy_id=current.policy_id,
                graded_at=now(),
                grader="agreement",
                routed_model="calc" if i % 2 else "chatty",
                baseline_model="strong",
                routed_score=1.0,
                baseline_score=1.0,
                is_free=False,
                routed_cost_usd=1e-6,
                baseline_cost_usd=1e-5,
                shadow_cost_usd=1e-5,
                task="math" if i % 2 else "chat",
                prompt_sha256=None,
            )
            for i in range(n)
        ],
    )


def test_a_policy_routing_to_two_models_refits_and_promotes(tmp_path: Path) -> None:
    """Each traffic item measures one routed model and the baseline: the other model is not
    measured there (never routed to there by the refit), not a reason to drop the item."""
    store = three_models(tmp_path / "s.duckdb")
    routed_pairs(store, 160)
    result = refit_policy(store, "desk", promote_it=True, n_trials=5)
    assert result.promoted, result.reason
    assert result.verdict is not None and result.verdict.n >= 30
    new = serving(store, "desk")
    assert new is not None and new.version == 2
    policy = resolve(store, "desk").artifact.policy()
    assert policy.plan(RouteRequest("q", "math")).models[0] == "calc"
    assert policy.plan(RouteRequest("q", "chat")).models[0] == "chatty"


def test_the_promotion_test_refuses_a_route_to_a_model_not_measured_there(tmp_path: Path) -> None:
    store = three_models(tmp_path / "s.duckdb")
    routed_pairs(store, 60)
    held = load_outcomes(store, "traffic-desk", not_measured=True)
    assert held.n == 60 and held.capable is not None  # no item dropped for lacking a model
    require = parse_requirement("accuracy >= 95% of baseline")
    everywhere = create_policy("single", {"model": "calc"})  # calc never answered a chat request
    verdict = promotion_test(everywhere, require, held, "strong")
    assert not verdict.passed and "not measured" in verdict.reason
    split = create_policy("task_table", {"table": {"math": "calc", "chat": "chatty"},
                                         "default": "strong"})  # fmt: skip
    assert promotion_test(split, require, held, "strong").passed
