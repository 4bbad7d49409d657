"""Multiple-choice letter: find the letter the response chose and compare it to the reference."""

from __future__ import annotations

import re

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader

# Most explicit first: "answer is (B)", "Answer: B", then a lone letter, then a leading letter.
_PATTERNS = [
    re.compile(r"answer\s*(?:is|:)?\s*:?\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"^\s*\(?([A-J])\)?\s*[.):]?\s*$"),
    re.compile(r"^\s*\(?([A-J])[.):]\s"),
    re.compile(r"(?<![A-Za-z])\(([A-J])\)(?![A-Za-z])"),
]


def chosen_letter(response: str) -> str | None:
    """The option letter (A-J) a response chose, or None if it names none clearly."""
    for pattern in _PATTERNS:
        match = pattern.search(response)
        if match:
            return match.group(1).upper()
    return None


@register_grader("choice")
class ChoiceGrader(Grader):
    """1 if the chosen letter equals the reference letter (case-insensitive)."""

    def grade(self, response: str, item: Item) -> Score:
        letter = chosen_letter(response)
        if letter is None:
            return Score(0.0, "no option letter found")
        return Score(float(letter == (item.reference or "").strip().upper()[:1]))
