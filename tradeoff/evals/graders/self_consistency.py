"""Self-consistency: a sampled answer is trusted when most samples agree on it.

Reference-free, so usable as a verifier for best-of-k: of k sampled responses to one prompt,
those whose final answer is the majority answer are accepted when more than half of the k state
it. One response alone is accepted when it states an answer (it agrees with itself).
"""

from __future__ import annotations

import re
from collections import Counter

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader

_BOXED = re.compile(r"\\boxed\{\s*([^{}]*?)\s*\}")
_STATED = re.compile(r"(?:final answer|answer is|answer:)\s*[:\-]?\s*([^\n]+)", re.IGNORECASE)
_LETTER = re.compile(r"^\s*\(?([A-Ja-j])\)?[.)]?\s*$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_answer(text: str) -> str | None:
    """The response's final answer, normalised: the last \\boxed{}, else the last "answer: X",
    else a lone choice letter, else the last number; None when it states none."""
    for pattern in (_BOXED, _STATED, _LETTER):
        found = pattern.findall(text or "")
        if found:
            return _normalise(found[-1])
    numbers = _NUMBER.findall(text or "")
    return _normalise(numbers[-1]) if numbers else None


def _normalise(answer: str) -> str:
    answer = answer.strip().strip(".").strip()
    answer = re.sub(r"^\(?([A-Ja-j])\)?$", r"\1", answer).lower()
    return answer.replace(",", "") if _NUMBER.fullmatch(answer) else answer


@register_grader("self_consistency")
class SelfConsistencyGrader(Grader):
    """1 for a response stating the majority answer of its group (more than half agree)."""

    needs_reference = False

    def grade(self, response: str, item: Item) -> Score:
        return self.grade_group([response], item)[0]

    def grade_group(self, responses: list[str], item: Item) -> list[Score]:
        answers = [final_answer(r) for r in responses]
        counts = Counter(a for a in answers if a is not None)
        if not counts:
            return [Score(0.0, "no final answer stated") for _ in responses]
        majority, votes = counts.most_common(1)[0]
        if votes * 2 <= len(responses):
            return [
                Score(0.0, f"no majority ({votes} of {len(responses)} agree)") for _ in responses
            ]
        return [
            Score(1.0) if a == majority else Score(0.0, "disagrees with the majority answer")
            for a in answers
        ]

    async def agrade_group(self, responses: list[str], item: Item) -> list[Score]:
        return self.grade_group(responses, item)
