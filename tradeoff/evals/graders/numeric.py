"""Numeric answers within a tolerance (GSM8K style: the last number in the response)."""

from __future__ import annotations

import math
import re

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def last_number(text: str) -> float | None:
    """The last number written in `text` (thousands separators allowed), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


@register_grader("numeric")
class NumericGrader(Grader):
    """1 if the response's last number is within `tolerance` (relative, default 1e-6) of the
    reference's; `abs_tolerance` (default 0) also accepted."""

    def grade(self, response: str, item: Item) -> Score:
        expected = last_number(item.reference or "")
        got = last_number(response)
        if expected is None:
            return Score(0.0, "reference has no number")
        if got is None:
            return Score(0.0, "no number in response")
        rel = float(self.option(item, "tolerance", 1e-6))
        abs_tol = float(self.option(item, "abs_tolerance", 0.0))
        return Score(float(math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol)))
