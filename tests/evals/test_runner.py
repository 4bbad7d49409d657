"""The runner end to end: real store, real litellm, real graders, the upstream stand-in."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evals.runner_fixtures import PRICE, add_items, model_entry, qa_items
from tradeoff.evals.errors import UsageError
from tradeoff.evals.registry import Registry, parse_entry
from tradeoff.evals.runner import EvalSpec, run_eval
from tradeoff.evals.store import Store

_coin = itertools.count()


def coin(body: dict[str, Any]) -> str:
    """Right on even calls, wrong on odd ones: an unreliable model."""
    return "echo: question 0 1 2 3" if next(_coin) % 2 == 0 else "no idea"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Any]:
    from tests.support.upstream import Rule, Upstream

    rules = [
        Rule(model="wrong", reply="no idea"),
        Rule(model="broken", status=500),
        Rule(model="recovers", status=503, fail_times=4),
        Rule(model="limited", status=429, fail_times=1, retry_after=1.2),
        Rule(model="slow", delay_s=0.1),
        Rule(model="coin", reply=coin),
        Rule(model="hang", hang=True),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-runner")


def registry(url: str, *names: str, **extra: Any) -> Registry:
    return Registry([parse_entry(model_entry(n, url, **extra), n) for n in names])


def spec(models: list[str], **kw: Any) -> EvalSpec:
    kw.setdefault("progress", False)
    return EvalSpec(dataset="qa", models=models, **kw)


@pytest.fixture
def qa_store(store: Store) -> Store:
    add_items(store, "qa", qa_items(6))
    return store


def outcomes(store: Store) -> list[tuple[Any, ...]]:
    with store.connect(read_only=True) as con:
        return con.execute(
            "SELECT item_id, model, sample, score, error, cost_usd, prompt_tokens, "
            "completion_tokens, ttft_ms, params_hash FROM outcomes ORDER BY ALL"
        ).fetchall()


def test_records_every_outcome_then_resumes_without_calling(qa_store: Store, upstream: Any) -> None:
    reg = registry(upstream.url, "right", "wrong")
    report = run_eval(qa_store, reg, spec(["right", "wrong"], repeats=2))
    rows = outcomes(qa_store)
    assert report.status == "completed" and report.recorded == len(rows) == 6 * 2 * 2
    assert {(r[1], r[3]) for r in rows} == {("right", 1.0), ("wrong", 0.0)}
    for row in rows:  # cost is exactly tokens x price; the stand-in counts words
        assert row[5] == pytest.approx((row[6] + row[7]) * PRICE) and row[6] == 2
        assert row[8] is not None and row[4] is None
    with qa_store.connect(read_only=True) as con:
        run = con.execute("SELECT kind, status, n_outcomes, spend_usd FROM runs").fetchone()
    assert run is not None and run[:3] == ("eval", "completed", 24)
    assert run[3] == pytest.approx(sum(r[5] for r in rows))
    by_model = {m["model"]: m for m in report.summary["models"]}
    assert by_model["right"]["accuracy"] == 1.0 and by_model["wrong"]["accuracy"] == 0.0
    assert by_model["right"]["consistency"] == 1.0

    calls = dict(upstream.model_counts)
    again = run_eval(qa_store, reg, spec(["right", "wrong"], repeats=2))
    assert again.recorded == 0 and again.skipped == 24
    assert dict(upstream.model_counts) == calls  # nothing recorded is paid for twice
    assert outcomes(qa_store) == rows

    hotter = run_eval(qa_store, reg, spec(["right"], params={"temperature": 0.7}))
    assert hotter.recorded == 6 and hotter.params_hash != ""
    assert upstream.requests[-1]["temperature"] == 0.7


def test_errors_are_outcomes_and_a_rerun_replaces_them(qa_store: Store, upstream: Any) -> None:
    reg = registry(upstream.url, "broken", "recovers")
    first = run_eval(qa_store, reg, spec(["broken", "recovers"], max_retries=0, limit=4))
    rows = outcomes(qa_store)
    assert first.recorded == 8 and all(
        r[3] is None and "500" in r[4] for r in rows if r[1] == "broken"
    )
    assert upstream.model_counts["broken"] == 4
    errors = {m["model"]: m["error_rate"] for m in first.summary["models"]}
    assert errors == {"broken": 1.0, "recovers": 1.0}

    second = run_eval(qa_store, reg, spec(["recovers"], max_retries=0, limit=4))
    assert second.recorded == 4
    fixed = [r for r in outcomes(qa_store) if r[1] == "recovers"]
    assert len(fixed) == 4 and all(r[3] == 1.0 and r[4] is None for r in fixed)


def test_timeouts_are_retried_then_recorded_as_errors(qa_store: Store, upstream: Any) -> None:
    reg = registry(upstream.url, "hang")
    report = run_eval(qa_store, reg, spec(["hang"], limit=1, timeout_s=0.3, max_retries=1))
    (row,) = outcomes(qa_store)
    assert row[3] is None and "Timeout" in row[4] and upstream.model_counts["hang"] == 2
    assert report.summary["models"][0]["error_rate"] == 1.0


def test_retries_honour_retry_after(qa_store: Store, upstream: Any) -> None:
    reg = registry(upstream.url, "limited")
    start = time.monotonic()
    report = run_eval(qa_store, reg, spec(["limited"], limit=1))
    # Without Retry-After the first backoff would be at most 0.75 s.
    assert time.monotonic() - start >= 1.2
    assert report.summary["models"][0]["errors"] == 0 and upstream.model_counts["limited"] == 2


def test_per_model_rpm_and_concurrency_limits(store: Store, upstream: Any) -> None:
    add_items(store, "qa", qa_items(5))
    start = time.monotonic()
    run_eval(store, registry(upstream.url, "paced", rpm=300), spec(["paced"], concurrency=8))
    assert time.monotonic() - start >= 4 * 0.2  # 300 rpm: starts 0.2 s apart
    start = time.monotonic()
    run_eval(store, registry(upstream.url, "slow", max_concurrency=1), spec(["slow"]))
    assert time.monotonic() - start >= 5 * 0.1  # one at a time, 0.1 s each


def test_max_cost_stops_before_the_budget_is_exceeded(qa_store: Store, upstream: Any) -> None:
    reg = registry(upstream.url, "budgeted")
    # Each call reserves $1.2e-05 and costs about $5e-06: two fit, then the third cannot.
    # (At $6e-05 the whole run fits: it used to stop only because the calls in flight held
    # their reservations, issue 22 item 7.)
    budget = 2e-5
    report = run_eval(
        qa_store, reg, spec(["budgeted"], max_cost_usd=budget, params={"max_tokens": 10})
    )
    assert report.status == "budget_exhausted" and "--max-cost" in report.message
    assert 0 < report.recorded < 6 and report.spend_usd <= budget
    with qa_store.connect(read_only=True) as con:
        status = con.execute("SELECT status FROM runs").fetchone()
    assert status == ("budget_exhausted",)


def test_bad_grader_or_dataset_fails_before_any_call(store: Store, upstream: Any) -> None:
    add_items(store, "qa", qa_items(2, grader="fuzzy"))
    before = sum(upstream.model_counts.values())
    with pytest.raises(UsageError, match="unknown grader 'fuzzy'"):
        run_eval(store, registry(upstream.url, "right"), spec(["right"]))
    with pytest.raises(UsageError, match="import them"):
        run_eval(store, registry(upstream.url, "right"), EvalSpec(dataset="nope", models=["right"]))
    assert sum(upstream.model_counts.values()) == before
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_grader_failure_is_that_outcome_error(store: Store, upstream: Any, tmp_path: Path) -> None:
    add_items(store, "qa", qa_items(2, grader="tests.evals.test_runner:exploding_grader"))
    run_eval(store, registry(upstream.url, "right"), spec(["right"]))
    rows = outcomes(store)
    assert len(rows) == 2 and all(r[3] is None and "grading failed" in r[4] for r in rows)


def test_chat_items_send_their_messages(store: Store, upstream: Any) -> None:
    chat = [
        {"role": "system", "content": "Answer tersely."},
        {"role": "user", "content": "question 7"},
    ]
    add_items(
        store, "qa", [{"item_id": "c1", "messages": chat, "reference": "7", "grader": "contains"}]
    )
    report = run_eval(store, registry(upstream.url, "right"), spec(["right"]))
    assert report.summary["models"][0]["accuracy"] == 1.0
    assert upstream.requests[-1]["messages"] == chat


def exploding_grader(response: str, item: Any) -> float:
    raise ValueError("grader bug")


def test_repeats_measure_consistency(store: Store, upstream: Any) -> None:
    add_items(store, "qa", qa_items(3))
    report = run_eval(
        store, registry(upstream.url, "coin"), spec(["coin"], repeats=4, concurrency=1)
    )
    row = report.summary["models"][0]
    assert row["n"] == 12 and row["accuracy"] == pytest.approx(0.5)
    # Calls alternate right/wrong and go sample by sample over 3 items, so every item's four
    # samples split 2-2: agreement 0.5, no errors.
    assert row["consistency"] == pytest.approx(0.5)
