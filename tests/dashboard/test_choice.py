"""Choosing the option that meets the requirement at its lower bound, and wording its savings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tradeoff.dashboard.choice import (
    FAILS,
    MEETS,
    ON_AVERAGE,
    Option,
    Requirement,
    best_feasible,
    on_average_only,
    pareto_frontier,
    savings_sentence,
    verdict,
    verdicts,
    with_kept,
)
from tradeoff.policies.requirement import parse_requirement

# Kept shares are paired with `large`; bounds are what "meets" is decided on.
SMALL = Option("small", "model", 0.60, 0.2, reliability=0.80, p95_latency_ms=400, kept=0.66,
               kept_lo=0.60, kept_hi=0.72, bound=0.60)  # fmt: skip
MEDIUM = Option("medium", "model", 0.84, 2.0, reliability=0.90, p95_latency_ms=900, kept=0.92,
                kept_lo=0.86, kept_hi=0.98, bound=0.86)  # fmt: skip
LARGE = Option("large", "model", 0.91, 20.0, reliability=0.92, p95_latency_ms=2200, kept=1.0,
               kept_lo=1.0, kept_hi=1.0, bound=1.0)  # fmt: skip
# Accepted at 95% (its acceptance bound), though its held-out point is a shade lower.
POLICY = Option("cheap-first", "policy", 0.86, 1.0, reliability=0.91, p95_latency_ms=800,
                kept=0.945, kept_lo=0.90, kept_hi=0.99, bound=0.951,
                accepted_for="accuracy >= 95% of baseline")  # fmt: skip
ORACLE = Option("oracle", "oracle", 0.97, 0.5)
SWEEP = Option("task_table lambda=0.1", "sweep", 0.95, 0.3)
ALL = [SMALL, MEDIUM, LARGE, POLICY, ORACLE, SWEEP]


def test_frontier_drops_dominated_points() -> None:
    assert [o.name for o in pareto_frontier([SMALL, MEDIUM, LARGE, POLICY])] == [
        "small",
        "cheap-first",
        "large",
    ]


@pytest.mark.parametrize(
    ("share", "expected"),
    [(0.6, "small"), (0.86, "cheap-first"), (0.95, "cheap-first"), (0.96, "large"),
     (1.0, "large")],
)  # fmt: skip
def test_the_recommendation_is_the_cheapest_option_meeting_at_its_lower_bound(
    share: float, expected: str
) -> None:
    best = best_feasible(ALL, Requirement("large", share))
    assert best is not None and best.name == expected


def test_meeting_on_average_is_a_state_of_its_own_and_never_recommended() -> None:
    requirement = Requirement("large", 0.90)
    # medium's point (92%) meets 90%, its bound (86%) does not.
    assert verdict(MEDIUM, LARGE, requirement) == ON_AVERAGE
    assert verdict(SMALL, LARGE, requirement) == FAILS
    assert verdict(LARGE, LARGE, requirement) == MEETS  # the baseline keeps 100% of itself
    assert on_average_only(ALL, requirement, cheaper_than=20.0) == [MEDIUM]


def test_a_policy_meets_what_it_was_accepted_for_even_when_the_test_point_is_below() -> None:
    """Accepted at a 95.1% bound, held-out point 94.5%: it meets 95%, as fit decided (the issue's
    "fitted for 80%, test point 79.985%, passed over for 80%")."""
    assert verdict(POLICY, LARGE, Requirement("large", 0.95)) == MEETS
    # And nothing more than its bound: at 96% its point does not even reach it.
    assert verdict(POLICY, LARGE, Requirement("large", 0.96)) == FAILS


def test_a_wide_interval_is_not_a_guarantee() -> None:
    """The issue's 99% case: kept 99% on average, interval 92-106%, accepted for 95%."""
    policy = replace(POLICY, kept=0.99, kept_lo=0.92, kept_hi=1.06, bound=0.95)
    assert verdict(policy, LARGE, Requirement("large", 0.99)) == ON_AVERAGE
    assert best_feasible([LARGE, policy], Requirement("large", 0.99)) == LARGE


def test_against_another_baseline_an_option_has_point_estimates_only() -> None:
    unpaired = replace(POLICY, kept=None, kept_lo=None, kept_hi=None, bound=None)
    assert verdict(unpaired, LARGE, Requirement("large", 0.9)) == ON_AVERAGE
    assert with_kept(unpaired, LARGE).kept == pytest.approx(0.86 / 0.91)
    assert with_kept(unpaired, LARGE).savings == pytest.approx(1 - 1.0 / 20.0)


def test_reliability_and_latency_are_compared_at_their_points() -> None:
    assert best_feasible(ALL, Requirement("large", 0.6, min_reliability_share=0.95)) == POLICY
    assert best_feasible(ALL, Requirement("large", 0.6, max_p95_latency_s=0.3)) is None
    assert best_feasible(ALL, Requirement("large", 0.6, max_p95_latency_s=1.0)) == SMALL
    no_latency = replace(MEDIUM, p95_latency_ms=None)
    assert verdict(no_latency, LARGE, Requirement("large", 0.5, max_p95_latency_s=9)) == FAILS


def test_references_are_never_chosen_and_an_unknown_baseline_gives_none() -> None:
    judged = verdicts(ALL, Requirement("large", 0.5))
    assert best_feasible([ORACLE, SWEEP, LARGE], Requirement("large", 0.5)) == LARGE
    assert judged["small"] == MEETS
    assert best_feasible(ALL, Requirement("gone", 0.5)) is None
    assert verdicts(ALL, Requirement("gone", 0.5)) == {}


def test_savings_sentence() -> None:
    shown = replace(POLICY, savings=0.71, n=2000)
    assert savings_sentence(shown, "gpt-4o", "held-out items") == (
        "keeps 94% of gpt-4o's accuracy (95% CI 90%–99%) at 71% less cost, on 2,000 held-out items"
    )
    dearer = replace(shown, savings=-9.0, kept_lo=None, n=None)
    assert savings_sentence(dearer, "medium", "items").endswith("at 900% more cost")
    free = replace(shown, savings=None)
    assert "no saving can be stated" in savings_sentence(free, "free", "items")


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
