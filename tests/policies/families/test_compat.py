"""Version-1 policy files written before per-request routing keep loading and serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.policies.families.test_contract import _learned
from tradeoff.policies import RouteRequest, load_artifact

V1_FILES = {
    "single": {"model": "m1"},
    "task_table": {"table": {"math": "m2"}, "default": "m1"},
    "cascade": {"models": ["m1", "m2"], "verifier": "answer_parses"},
    "best_of_k": {"model": "m1", "k": 3, "verifier": "answer_parses", "fallback": ["m2"]},
}


def write(tmp_path: Path, family: str, params: dict) -> Path:
    doc = {"version": 1, "name": f"old-{family}", "family": family, "params": params}
    path = tmp_path / f"{family}.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("family", sorted(V1_FILES))
def test_hand_written_v1_files_load_and_plan(family: str, tmp_path: Path) -> None:
    policy = load_artifact(write(tmp_path, family, V1_FILES[family])).policy()
    plan = policy.plan(RouteRequest("What is 2 + 2?", "math"))
    assert set(plan.models) <= {"m1", "m2"} and plan.models


def test_a_cascade_naming_a_reference_grader_still_loads(tmp_path: Path) -> None:
    """The proxy serves it in plain fallback order (no reference at serve time)."""
    params = {"models": ["m1", "m2"], "verifier": "exact"}
    plan = load_artifact(write(tmp_path, "cascade", params)).policy().plan(RouteRequest("q"))
    assert plan.models == ("m1", "m2") and plan.verifier == "exact"


def test_learned_v1_params_keep_their_shape_and_decisions(tmp_path: Path) -> None:
    old = _learned(["m1", "m2", "m3"])  # the threshold rule of version-1 files
    params = old.to_params()
    assert set(params) == {
        "models", "costs", "rule", "threshold", "lam", "tasks", "n_features", "coef", "intercept",
    }  # fmt: skip
    loaded = load_artifact(write(tmp_path, "learned", params)).policy()
    requests = [RouteRequest("What is 2 + 2?", "math"), RouteRequest("x " * 300, None)]
    assert loaded.plan_many(requests) == old.plan_many(requests)
