"""Verifiers replayed on recorded responses price cascades and best-of-k from data."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import numpy as np

from tests.policies.synthetic import build_store
from tradeoff.policies.families.base import RouteRequest
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.options import FitOptions
from tradeoff.router.request import ChatRequest
from tradeoff.router.state import ProxyState


def test_best_of_k_with_self_consistency_from_recorded_samples(tmp_path: Path) -> None:
    """The cheap model knows the answer to two thirds of the items and then always agrees with
    itself; on the rest it guesses a different number each time (and always states one, so
    answer_parses cannot tell). Only self-consistency over the k samples separates them."""

    counter = itertools.count(10)

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "strong" or i % 3 != 0)

    def response(task: str, model: str, i: int, value: float) -> str:
        guess = next(counter)  # a new number at every sample
        return "The answer is 4." if value else f"The answer is {guess}."

    store = build_store(
        tmp_path / "sc.duckdb",
        tasks={"q": 240},
        models={"cheap": 0.001, "strong": 0.02},
        score=score,
        responses=response,
        samples=3,
    )
    report = fit_policy(
        store, FitOptions("synth", "accuracy >= 97% of baseline", baseline="strong")
    )
    params = report.artifact.params  # type: ignore[union-attr]
    assert report.family == "best_of_k" and params["verifier"] == "self_consistency"
    # three cheap samples always, the strong model for the third that disagree
    assert abs(report.metrics["cost_per_request_usd"] - (0.003 + 0.02 / 3)) < 0.003
    assert report.metrics["accuracy_vs_baseline"] > 0.97


def test_cascade_on_the_prompts_own_tests(tmp_path: Path) -> None:
    """Code prompts state their tests; the cheap model's code passes them half the time."""

    def prompt(task: str, i: int) -> str:
        return f"Write add{i}.\nYour code should pass these tests:\n\nassert add{i}(1, 2) == 3\n"

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "strong" or i % 2 == 0)

    def response(task: str, model: str, i: int, value: float) -> str:
        op = "+" if value else "-"
        return f"```python\ndef add{i}(a, b):\n    return a {op} b\n```"

    store = build_store(
        tmp_path / "pt.duckdb",
        tasks={"code": 90},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        prompt=prompt,
        responses=response,
    )
    report = fit_policy(
        store,
        FitOptions(
            "synth",
            # ~63 training items, all right: an exact binomial bound vouches for about 95% of
            # them at 95% confidence, so 90% can be promised and 98% (as this test once asked,
            # on a zero-variance t bound) cannot
            "accuracy >= 90% of baseline",
            baseline="strong",
            families=("single", "cascade"),
        ),
    )
    params = report.artifact.params  # type: ignore[union-attr]
    assert params["models"] == ["cheap", "strong"] and params["verifier"] == "prompt_tests"
    assert report.metrics["accuracy_vs_baseline"] == 1.0
    assert 0.3 < report.metrics["savings_vs_baseline"] < 0.6  # half escalate: 0.001 + 0.01 / 2


def test_the_proxy_judges_sampled_choices_together() -> None:
    """At serve time self-consistency sees all k choices of one call, as the replay does."""
    verify = ProxyState._build_verifier("self_consistency")
    assert verify is not None
    chat = ChatRequest(model="p", body={"messages": []}, stream=False, task=None, prompt="q")
    texts = ["The answer is 5", "The answer is 4", "answer: 4"]
    assert asyncio.run(verify(texts, chat)) == 1
    assert asyncio.run(verify(["The answer is 5", "The answer is 4"], chat)) is None


def test_a_gated_cascade_skips_the_cheap_try_where_it_is_always_rejected(tmp_path: Path) -> None:
    """On task A the cheap model answers well (and says so); on task B it never states an
    answer, so a cascade would pay for a rejected cheap call on every B request: the gate sends
    B straight to the strong model and keeps the cascade (or the cheap model) for A."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "strong" or (task == "A" and i % 5 != 0))

    def response(task: str, model: str, i: int, value: float) -> str:
        return "The answer is 4." if value else "I am not sure."

    store = build_store(
        tmp_path / "gate.duckdb",
        tasks={"A": 200, "B": 200},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        responses=response,
    )
    report = fit_policy(store, FitOptions(
        "synth", "accuracy >= 95% of baseline", baseline="strong",
        families=("single", "cascade"),
    ))  # fmt: skip
    policy = report.artifact.policy()  # type: ignore[union-attr]
    assert report.family == "cascade"
    plan_a, plan_b = (policy.plan(RouteRequest("q", t)) for t in ("A", "B"))
    assert plan_b.models == ("strong",)
    assert plan_a.models[0] == "cheap"
    # the ungated cascade pays the cheap call everywhere: 0.001 + (B: all, A: a fifth) x 0.01
    ungated = 0.001 + (0.5 + 0.5 * 0.2) * 0.01
    assert report.metrics["cost_per_request_usd"] < ungated - 0.0003
