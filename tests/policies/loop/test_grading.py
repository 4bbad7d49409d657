"""Pair grading: one scale (r for the routed answer, s for the baseline's) for every grader."""

from __future__ import annotations

from typing import Any

import pytest

from tradeoff.evals.errors import UsageError
from tradeoff.evals.graders import GradingError
from tradeoff.policies.loop.grading import Pair, build_pair_grader


def pair(routed: str, baseline: str) -> Pair:
    return Pair("req-1", "What is the capital of France?", routed, baseline, "geo")


async def test_agreement_is_a_normalised_match_with_the_baseline() -> None:
    grader = build_pair_grader("agreement")
    assert (await grader.grade(pair("The Paris.", "paris"))).routed == 1.0
    score = await grader.grade(pair("Lyon", "Paris"))
    assert (score.routed, score.baseline, score.cost_usd) == (0.0, 1.0, 0.0)


async def test_a_reference_grader_uses_the_baseline_answer_as_reference() -> None:
    grader = build_pair_grader("numeric")
    assert (await grader.grade(pair("The answer is 42", "42.0"))).routed == 1.0
    assert (await grader.grade(pair("41", "42"))).routed == 0.0


async def test_a_reference_free_grader_scores_both_answers() -> None:
    grader = build_pair_grader("json_valid")
    score = await grader.grade(pair('{"city": "Paris"}', "Paris, I think"))
    assert (score.routed, score.baseline) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("verdicts", "routed"),
    [
        (["A", "A"], 0.5),  # pure position bias cancels: a tie
        (["A", "B"], 1.0),  # the routed answer wins in both orders
        (["B", "A"], 0.0),
        (["TIE", "TIE"], 0.5),
        (["A", "TIE"], 0.75),
    ],
)
async def test_the_pairwise_judge_asks_in_both_orders(verdicts: list[str], routed: float) -> None:
    asked: list[str] = []

    async def ask(model: str, messages: list[dict[str, Any]]) -> tuple[str, float]:
        asked.append(messages[0]["content"])
        return f"Reasons.\nVERDICT: {verdicts[len(asked) - 1]}", 0.001

    grader = build_pair_grader("judge:referee", ask)
    score = await grader.grade(pair("ROUTED", "BASELINE"))
    assert (score.routed, score.baseline) == (routed, 1.0 - routed)
    assert score.cost_usd == pytest.approx(0.002)
    first, second = asked
    assert first.index("ROUTED") < first.index("BASELINE")
    assert second.index("BASELINE") < second.index("ROUTED")


async def test_a_judge_without_a_verdict_is_a_grading_error() -> None:
    async def ask(model: str, messages: list[dict[str, Any]]) -> tuple[str, float]:
        return "I cannot decide.", 0.0

    with pytest.raises(GradingError, match="VERDICT"):
        await build_pair_grader("judge:referee", ask).grade(pair("a", "b"))


@pytest.mark.parametrize(
    ("spec", "needle"), [("judge", "judge:MODEL"), ("judge:", "needs a model"), ("nope", "nope")]
)
def test_bad_grader_names_say_what_to_do(spec: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        build_pair_grader(spec, None)
