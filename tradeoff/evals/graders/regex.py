"""Regular expression: the reference (or the `pattern` option) must match the response."""

from __future__ import annotations

import re

from tradeoff.evals.errors import UsageError
from tradeoff.evals.graders.base import Grader, Item, Score, register_grader


@register_grader("regex")
class RegexGrader(Grader):
    """1 if `re.search(pattern, response)` matches; pattern = option `pattern` or the reference.

    Without a reference this is reference-free when the grader is built with a `pattern`.
    """

    def check(self) -> None:
        pattern = self.options.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UsageError(f"grader regex: bad pattern {pattern!r}: {exc}") from None

    def grade(self, response: str, item: Item) -> Score:
        pattern = self.option(item, "pattern", item.reference)
        if not pattern:
            return Score(0.0, "no pattern")
        try:
            return Score(float(re.search(pattern, response, re.DOTALL) is not None))
        except re.error as exc:
            return Score(0.0, f"bad pattern: {exc}")
