"""One contract suite, run against every policy family (like optuna's pytest_samplers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tradeoff.evals.errors import TradeoffError
from tradeoff.policies import (
    PolicyArtifact,
    RouteRequest,
    create_policy,
    load_artifact,
    save_artifact,
)
from tradeoff.policies.families.base import FAMILIES, Policy, _load_builtin_families
from tradeoff.policies.families.best_of_k import BestOfKPolicy
from tradeoff.policies.families.cascade import CascadePolicy
from tradeoff.policies.families.costs import CostModel
from tradeoff.policies.families.features import PromptFeatures
from tradeoff.policies.families.learned import LearnedPolicy
from tradeoff.policies.families.single import SinglePolicy
from tradeoff.policies.families.task_table import TaskTablePolicy

REQUESTS = [
    RouteRequest("What is 2 + 2?", "math"),
    RouteRequest("Write a function that reverses a list.", "code"),
    RouteRequest("Who wrote Hamlet?", None),
    RouteRequest("", "unknown-task"),
    RouteRequest("x " * 5000, "math"),
]


def _learned(models: list[str]) -> LearnedPolicy:
    width = PromptFeatures(["math", "code"]).width
    rng = np.random.default_rng(0)
    return LearnedPolicy(
        models=models,
        costs=[float(i + 1) for i in range(len(models))],
        coef=rng.normal(size=(len(models), width)),
        intercept=rng.normal(size=len(models)),
        tasks=["math", "code"],
        rule="threshold",
        threshold=0.2,
    )


def _costs(models: list[str]) -> CostModel:
    m = len(models)
    per_char = np.array([1e-7 * (j + 1) for j in range(m)])
    base = np.array([1e-4 * (j + 1) ** 2 for j in range(m)])
    return CostModel(tuple(models), per_char, base, ("math",), base[None, :] * 2)


def _learned_per_request(models: list[str]) -> LearnedPolicy:
    params = _learned(models).to_params()
    params |= {"rule": "per_request", "lam": 0.1, "cost_unit": 1e-3}
    params["cost_model"] = _costs(models).to_params()
    policy = LearnedPolicy.from_params(params)
    assert isinstance(policy, LearnedPolicy)
    return policy


def _table_per_request(models: list[str]) -> TaskTablePolicy:
    scores = {"math": [0.2 + 0.3 * j for j in range(len(models))]}
    default = [0.5] * len(models)
    return TaskTablePolicy.by_request(models, scores, default, _costs(models), 0.1, 1e-3)


# family (":variant") -> build a policy over a catalog of model names
BUILDERS: dict[str, Callable[[list[str]], Policy]] = {
    "single": lambda ms: SinglePolicy(ms[0] if ms else ""),
    "task_table": lambda ms: TaskTablePolicy({"math": ms[-1]} if ms else {}, ms[0] if ms else ""),
    "task_table:per_request": _table_per_request,
    "learned": _learned,
    "learned:per_request": _learned_per_request,
    "cascade": lambda ms: CascadePolicy(ms, "answer_parses"),
    "best_of_k": lambda ms: BestOfKPolicy(ms[0] if ms else "", 3, "answer_parses", ms[1:]),
}
CATALOG = ["small", "medium", "large"]


def test_every_registered_family_is_under_contract() -> None:
    _load_builtin_families()
    assert set(FAMILIES) == {name.split(":")[0] for name in BUILDERS}


@pytest.fixture(params=sorted(BUILDERS))
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_only_picks_configured_models(family: str) -> None:
    policy = BUILDERS[family](CATALOG)
    assert set(policy.models) <= set(CATALOG)
    for plan in policy.plan_many(REQUESTS):
        assert plan.models and set(plan.models) <= set(policy.models)
        assert plan.samples >= 1


def test_deterministic(family: str) -> None:
    first = [BUILDERS[family](CATALOG).plan(r) for r in REQUESTS]
    again = [BUILDERS[family](CATALOG).plan(r) for r in REQUESTS]
    assert first == again
    assert BUILDERS[family](CATALOG).plan_many(REQUESTS) == first


def test_empty_catalog_is_a_clear_error(family: str) -> None:
    with pytest.raises(TradeoffError, match="model"):
        BUILDERS[family]([])


def test_one_model_catalog_routes_to_it(family: str) -> None:
    policy = BUILDERS[family](["only"])
    assert policy.models == ("only",)
    assert all(plan.models == ("only",) for plan in policy.plan_many(REQUESTS))


def test_round_trips_through_params(family: str) -> None:
    policy = BUILDERS[family](CATALOG)
    again = create_policy(policy.family, policy.to_params())
    assert again == policy
    assert again.plan_many(REQUESTS) == policy.plan_many(REQUESTS)


def test_round_trips_through_the_artifact_file(family: str, tmp_path: Path) -> None:
    policy = BUILDERS[family](CATALOG)
    path = save_artifact(PolicyArtifact.from_policy("p", policy, dataset="d"), tmp_path / "p.json")
    loaded = load_artifact(path)
    assert loaded.family == policy.family and loaded.models == list(policy.models)
    assert loaded.policy().plan_many(REQUESTS) == policy.plan_many(REQUESTS)


def test_bad_params_are_a_clear_error(family: str) -> None:
    name = family.split(":")[0]
    with pytest.raises(TradeoffError, match=name):
        create_policy(name, {"unexpected": 1})


def test_per_request_rules_route_long_prompts_cheaper() -> None:
    """The same task, a longer prompt: its dearer options cost more per request, so the
    gain-per-dollar rule moves it to a cheaper model (never to a dearer one)."""
    for build in (_learned_per_request, _table_per_request):
        policy = build(CATALOG)
        short = policy.plan(RouteRequest("What is 2 + 2?", "math")).models
        long = policy.plan(RouteRequest("What is 2 + 2? " + "context " * 20000, "math")).models
        assert (short, long) == (("large",), ("small",))


def test_learned_predicts_the_same_after_a_save() -> None:
    policy = _learned(CATALOG)
    again = create_policy("learned", policy.to_params())
    assert isinstance(again, LearnedPolicy)
    prompts, tasks = [r.prompt for r in REQUESTS], [r.task for r in REQUESTS]
    assert np.array_equal(again.predict(prompts, tasks), policy.predict(prompts, tasks))
