"""The fit knows capabilities: a model that lacks what a task's items need is never planned for
them, even when its recorded outcomes there look good (e.g. an eval run without the tools)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.policies.synthetic import build_store
from tradeoff.evals.capabilities import Capabilities
from tradeoff.evals.store import Store
from tradeoff.policies.data import load_outcomes
from tradeoff.policies.families.base import RouteRequest
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
CAPS = {"cheap": Capabilities(tools=False), "strong": Capabilities(tools=True)}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """`cheap` scores as well as `strong` on both tasks, at a tenth of the cost; the `agent`
    task's items declare tools (items.metadata), which `cheap` cannot call."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(i % 10 != 0)  # the same item right or wrong for both models

    built = build_store(
        tmp_path / "caps.duckdb",
        tasks={"chat": 200, "agent": 200},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
    )
    with built.transaction() as con:
        con.execute(
            "UPDATE items SET metadata = ? WHERE task = 'agent'", [json.dumps({"tools": TOOLS})]
        )
    return built


def test_items_needing_tools_are_never_left_to_a_model_without_them(store: Store) -> None:
    blind = fit_policy(
        store, FitOptions("synth", "accuracy >= 95% of baseline", baseline="strong", save=False)
    )
    assert blind.description == "single cheap"  # what the fit does without capabilities
    report = fit_policy(
        store,
        FitOptions(
            "synth",
            "accuracy >= 95% of baseline",
            baseline="strong",
            save=False,
            capabilities=CAPS.get,
        ),
    )
    assert report.artifact is not None
    policy = report.artifact.policy()
    for i in range(20):
        agent = policy.plan(RouteRequest(f"agent question number {i}", "agent"))
        assert [m for m in agent.models if m != "cheap"], agent  # a capable model is planned
        chat = policy.plan(RouteRequest(f"chat question number {i}", "chat"))
        assert chat.models[0] == "cheap"  # the savings on the other task are kept
    assert report.metrics["savings_vs_baseline"] > 0.3  # half the items still go cheap
    assert report.metrics["error_rate"] == 0  # no test item was left to the incapable model


def test_loading_marks_what_the_proxy_would_skip(store: Store) -> None:
    plain = load_outcomes(store, "synth")
    restricted = load_outcomes(store, "synth", capabilities=CAPS.get)
    assert plain.capable is None and restricted.capable is not None
    agent = restricted.tasks == "agent"
    cheap = restricted.models.index("cheap")
    assert not restricted.capable[agent, cheap].any() and restricted.capable[~agent].all()
    # skipped at no cost, counted as an error with score 0 (what the proxy's 400 would be)
    assert (restricted.cost[agent, cheap] == 0).all() and restricted.error[agent, cheap].all()
    assert restricted.data_hash != plain.data_hash
    assert any("capabilit" in note for note in restricted.notes)
