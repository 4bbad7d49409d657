"""Exact and normalized-exact match against the reference."""

from __future__ import annotations

import re
import string

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


@register_grader("exact")
class ExactGrader(Grader):
    """1 if the response, stripped of surrounding whitespace, equals the reference."""

    def grade(self, response: str, item: Item) -> Score:
        return Score(float(response.strip() == (item.reference or "").strip()))


@register_grader("normalized_exact")
class NormalizedExactGrader(Grader):
    """1 if the responses match after `normalize` (case, punctuation, articles, spaces)."""

    def grade(self, response: str, item: Item) -> Score:
        return Score(float(normalize(response) == normalize(item.reference or "")))
