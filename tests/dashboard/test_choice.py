"""Choosing the best feasible option and wording the savings."""

from __future__ import annotations

import pytest

from dashboard.choice import (
    Evidence,
    Option,
    Requirement,
    best_feasible,
    pareto_frontier,
    point_evidence,
    savings_sentence,
)
from policies.requirement import parse_requirement

SMALL = Option("small", "model", 0.60, 0.2, reliability=0.80, p95_latency_ms=400)
MEDIUM = Option("medium", "model", 0.84, 2.0, reliability=0.90, p95_latency_ms=900)
LARGE = Option("large", "model", 0.91, 20.0, reliability=0.92, p95_latency_ms=2200)
POLICY = Option("cheap-first", "policy", 0.86, 1.0, reliability=0.91, p95_latency_ms=800)
ORACLE = Option("oracle", "oracle", 0.97, 0.5)
ALL = [SMALL, MEDIUM, LARGE, POLICY, ORACLE]


def test_frontier_drops_dominated_points() -> None:
    assert [o.name for o in pareto_frontier([SMALL, MEDIUM, LARGE, POLICY])] == [
        "small",
        "cheap-first",
        "large",
    ]


@pytest.mark.parametrize(
    ("share", "expected"),
    [(0.6, "small"), (0.9, "cheap-first"), (0.95, "large"), (1.0, "large"), (1.01, None)],
)
def test_best_feasible_is_the_cheapest_that_meets_the_accuracy_share(
    share: float, expected: str | None
) -> None:
    best = best_feasible(ALL, Requirement("large", share))
    assert (best.name if best else None) == expected


def test_reliability_and_latency_constraints_exclude_options() -> None:
    assert (
        best_feasible(ALL, Requirement("large", 0.6, min_reliability_share=0.95)).name
        == "cheap-first"
    )
    assert best_feasible(ALL, Requirement("large", 0.6, max_p95_latency_s=0.3)) is None
    assert (
        best_feasible(ALL, Requirement("large", 0.9, max_p95_latency_s=1.0)).name == "cheap-first"
    )


def test_the_oracle_is_never_recommended_and_an_unknown_baseline_gives_none() -> None:
    assert best_feasible([ORACLE, LARGE], Requirement("large", 0.5)).name == "large"
    assert best_feasible(ALL, Requirement("gone", 0.5)) is None


def test_savings_sentence_from_point_estimates() -> None:
    assert savings_sentence(point_evidence(POLICY, LARGE), "large") == (
        "keeps 95% of large's accuracy at 95% less cost"
    )
    assert savings_sentence(point_evidence(LARGE, MEDIUM), "medium").endswith("at 900% more cost")
    free = Option("free", "model", 0.5, 0.0)
    assert "no saving" in savings_sentence(point_evidence(SMALL, free), "free")


def test_savings_sentence_with_paired_evidence() -> None:
    evidence = Evidence(0.863, 0.71, (0.849, 0.876), 2000, "held-out items")
    assert savings_sentence(evidence, "gpt-4o") == (
        "keeps 86% of gpt-4o's accuracy (95% CI 85%–88%) at 71% less cost, on 2,000 held-out items"
    )


def test_statement_is_the_cli_requirement_language() -> None:
    requirement = Requirement("large", 0.85, min_reliability_share=1.1, max_p95_latency_s=2.5)
    assert requirement.statement() == (
        "accuracy >= 85% of baseline and reliability >= 110% of baseline and p95_latency <= 2.5s"
    )
    parsed = parse_requirement(requirement.statement())
    assert [str(c) for c in parsed.constraints] == [
        "accuracy >= 85% of baseline",
        "reliability >= 110% of baseline",
        "p95_latency <= 2.5s",
    ]
