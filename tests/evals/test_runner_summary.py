"""Reliability, the Wilson interval and the summary table, on hand-computed examples."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tradeoff.evals.budget import Budget
from tradeoff.evals.params import params_hash
from tradeoff.evals.reliability import item_agreement, reliability, reliability_frame
from tradeoff.evals.summary import render, summarize, wilson


def test_item_agreement_is_the_majority_share() -> None:
    assert item_agreement([1, 1, 0]) == pytest.approx(2 / 3)
    assert item_agreement([0, 0, None]) == 1.0  # errors are not outcomes to agree with
    assert item_agreement([None, None]) is None


def test_reliability_matches_the_design_definition() -> None:
    # agreements 2/3, 1, 1 -> mean 8/9; 1 error in 9 samples -> x 8/9.
    scores = {"a": [1.0, 1.0, 0.0], "b": [0.0, 0.0, 0.0], "c": [None, 1.0, 1.0]}
    assert reliability(scores) == pytest.approx(8 / 9 * 8 / 9)
    assert reliability({"a": [1.0, 1.0]}) == 1.0
    assert reliability({"a": [None, None]}) == 0.0 and reliability({}) == 0.0
    assert reliability([[1.0, math.nan, 1.0]]) == pytest.approx(2 / 3)


def test_reliability_frame_groups_and_reads_the_error_column() -> None:
    frame = pd.DataFrame(
        {
            "model": ["m", "m", "m", "m", "n", "n"],
            "item_id": ["a", "a", "b", "b", "a", "a"],
            "score": [1.0, 0.0, 1.0, 0.7, 1.0, 1.0],
            "error": [None, None, None, "timeout", None, None],
        }
    )
    # m: agreements 0.5 and 1 -> 0.75, one error in four -> 0.5625; n: 1.
    assert reliability_frame(frame) == {"m": pytest.approx(0.5625), "n": 1.0}


def test_wilson_interval() -> None:
    low, high = wilson(0.5, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert wilson(1.0, 10)[1] == 1.0 and wilson(0.0, 10)[0] == 0.0
    assert wilson(0.3, 0) == (0.0, 1.0)


def test_summary_counts_errors_as_wrong_and_reports_per_task() -> None:
    frame = pd.DataFrame(
        {
            "model": ["m"] * 4,
            "task": ["math", "math", "code", "code"],
            "item_id": ["1", "2", "3", "4"],
            "sample": [0] * 4,
            "score": [1.0, 1.0, 1.0, None],
            "error": [None, None, None, "HTTP 500"],
            "cost_usd": [0.01, 0.01, 0.02, 0.0],
            "latency_ms": [100.0, 200.0, 300.0, 5000.0],
        }
    )
    summary = summarize(frame)
    (row,) = summary["models"]
    assert row["accuracy"] == 0.75 and row["errors"] == 1 and row["error_rate"] == 0.25
    assert row["mean_cost_usd"] == pytest.approx(0.01)
    assert row["p50_latency_ms"] == 200.0  # the errored call's latency is left out
    assert row["consistency"] is None  # one sample per item: nothing to agree on
    assert {t["task"]: t["accuracy"] for t in summary["tasks"]} == {"code": 0.5, "math": 1.0}
    table = render(summary)
    assert "accuracy [95% CI]" in table and "0.750 [" in table and "code" in table


def test_the_interval_counts_items_not_repeated_samples() -> None:
    """60 items, half right, asked once or three times (the same answer each time): the same
    items, so the same interval (Wilson at 60, 0.377-0.623), not one narrowed by repeats."""

    def asked(repeats: int) -> pd.DataFrame:
        rows = [
            ("m", "qa", str(i), s, float(i % 2), None, 0.01, 100.0)
            for i in range(60)
            for s in range(repeats)
        ]
        columns = ["model", "task", "item_id", "sample", "score", "error", "cost_usd"]
        return pd.DataFrame(rows, columns=[*columns, "latency_ms"])

    once, thrice = (summarize(asked(k))["models"][0]["accuracy_ci"] for k in (1, 3))
    assert thrice == once == list(wilson(0.5, 60))
    assert (round(once[0], 3), round(once[1], 3)) == (0.377, 0.623)


def test_params_hash_is_stable_and_empty_for_defaults() -> None:
    assert params_hash({}) == "" and params_hash({"temperature": None}) == ""
    assert params_hash({"temperature": 0, "max_tokens": 5}) == params_hash(
        {"max_tokens": 5, "temperature": 0}
    )
    assert params_hash({"temperature": 0}) != params_hash({"temperature": 0.0001})


def test_budget_reserves_conservatively() -> None:
    budget = Budget(1.0)
    prices = (0.001, 0.002)
    assert budget.estimate("m", prices, 100, 50) == pytest.approx(0.2)
    assert budget.estimate("m", prices, 100, None) == pytest.approx(0.1 + 1024 * 0.002)
    assert budget.reserve(0.6) and not budget.reserve(0.5)
    budget.settle(0.6, 0.1, "m", completion_tokens=900)
    assert budget.spent == pytest.approx(0.1) and budget.reserve(0.5)
    assert budget.estimate("m", prices, 0, None) == pytest.approx(1800 * 0.002)
