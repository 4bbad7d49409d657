"""Contains: the reference appears in the response (case-insensitive by default)."""

from __future__ import annotations

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader


@register_grader("contains")
class ContainsGrader(Grader):
    """1 if the reference is a substring of the response; option `case_sensitive`."""

    def grade(self, response: str, item: Item) -> Score:
        needle = (item.reference or "").strip()
        if not needle:
            return Score(0.0, "empty reference")
        if self.option(item, "case_sensitive", False):
            return Score(float(needle in response))
        return Score(float(needle.lower() in response.lower()))
