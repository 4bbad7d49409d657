from __future__ import annotations

import pytest

from tradeoff.policies.errors import RequirementError
from tradeoff.policies.requirement import Constraint, Objective, parse_objective, parse_requirement


@pytest.mark.parametrize(
    ("text", "constraints"),
    [
        ("accuracy >= 85% of baseline", [Constraint("accuracy", ">=", 0.85, True)]),
        ("reliability >= 110% of baseline", [Constraint("reliability", ">=", 1.1, True)]),
        ("cost <= 40% of baseline", [Constraint("cost", "<=", 0.4, True)]),
        ("p95_latency <= 2s", [Constraint("p95_latency", "<=", 2000.0)]),
        ("p95_latency <= 800ms", [Constraint("p95_latency", "<=", 800.0)]),
        ("accuracy >= 0.9", [Constraint("accuracy", ">=", 0.9)]),
        ("accuracy >= 90%", [Constraint("accuracy", ">=", 0.9)]),
        ("cost <= $0.002", [Constraint("cost", "<=", 0.002)]),
        ("accuracy >= 0.9x baseline", [Constraint("accuracy", ">=", 0.9, True)]),
        (
            "accuracy >= 85% of baseline, reliability >= 110% of baseline and p95_latency <= 2s",
            [
                Constraint("accuracy", ">=", 0.85, True),
                Constraint("reliability", ">=", 1.1, True),
                Constraint("p95_latency", "<=", 2000.0),
            ],
        ),
    ],
)
def test_parses(text: str, constraints: list[Constraint]) -> None:
    req = parse_requirement(text)
    assert list(req.constraints) == constraints
    assert req.objective == Objective("minimize", "cost")


def test_objective_in_text_or_given() -> None:
    assert parse_requirement("accuracy >= 0.5; maximize accuracy").objective == Objective(
        "maximize", "accuracy"
    )
    assert parse_requirement("cost <= $1", "maximize accuracy").objective.direction == "maximize"
    assert parse_objective("minimize p95_latency") == Objective("minimize", "p95_latency")


def test_round_trips_through_its_string() -> None:
    req = parse_requirement("accuracy >= 85% of baseline and p95_latency <= 2s; minimize cost")
    assert parse_requirement(str(req)).constraints == req.constraints


@pytest.mark.parametrize(
    ("text", "word", "what"),
    [
        ("accuracy >= lots", "'lots'", "expected a number after '>='"),
        ("accuray >= 0.9", "'accuray'", "unknown metric"),
        ("accuracy 0.9", "'0.9'", "expected >= or <="),
        ("p95_latency <= 2", "'2'", "unit"),
        ("accuracy >= 85% of basline", "'basline'", "expected 'baseline'"),
        ("accuracy >= 0.9 and", "the end", "expected a clause"),
        ("accuracy >= 0.9 cost <= 1", "'cost'", "expected 'and' or ','"),
        ("accuracy >= 1.5", "'1.5'", "fraction"),
        ("minimize cost and accuracy >= 0.9", "'accuracy'", "objective must come last"),
        ("accuracy >= 85 of baseline", "'85'", "N% of baseline"),
        ("accuracy > 85% of baseline", "'>'", "write >="),
        ("cost < $0.01", "'<'", "write <="),
        ("human_review <= 20", "'20'", "fraction"),
        ("accuracy >= 0.9 on task", "'on'", "on every task"),
        ("p95_latency <= 2s on every task", "'on'", "applies to accuracy and cost"),
    ],
)
def test_malformed_points_at_the_bad_word(text: str, word: str, what: str) -> None:
    with pytest.raises(RequirementError) as info:
        parse_requirement(text)
    message = str(info.value)
    assert what in message
    assert f"at {word}" in message
    assert f'"{text}"' in message
    assert "\n" not in message


def test_the_six_axes_parse() -> None:
    req = parse_requirement(
        "accuracy >= 90% of baseline on every task, human_review <= 10%, reliability >= 0.99, "
        "p95_latency <= 2s and cost <= 50% of baseline"
    )
    acc, review, *_ = req.constraints
    assert acc.per_task and acc.relative and acc.value == pytest.approx(0.9)
    assert (review.metric, review.op, review.value) == ("human_review", "<=", pytest.approx(0.1))
    assert not review.per_task
    assert str(acc) == "accuracy >= 90% of baseline on every task"
    assert parse_requirement(str(req)).constraints == req.constraints
    assert parse_requirement("accuracy >= 0.8 per task").constraints[0].per_task
    assert parse_requirement("reviews <= 50% of baseline").constraints[0].metric == "human_review"
