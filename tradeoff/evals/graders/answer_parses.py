"""Answer parses: the response states a final answer. Reference-free, so usable as a verifier."""

from __future__ import annotations

import re

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader

# `\boxed{...}`, "answer: X", "the answer is X", "final answer X", or a lone choice letter.
_ANSWER = re.compile(
    r"\\boxed\{\s*[^\s}]|(?:final answer|answer is|answer:)\s*[:\-]?\s*\S"
    r"|^\s*\(?[A-Ja-j]\)?[.)]?\s*$",
    re.IGNORECASE | re.MULTILINE,
)


@register_grader("answer_parses")
class AnswerParsesGrader(Grader):
    """1 if the response states a final answer."""

    needs_reference = False

    def grade(self, response: str, item: Item) -> Score:
        found = _ANSWER.search(response or "")
        return Score(1.0) if found else Score(0.0, "no final answer stated")
