"""Graders: score a response to an item in [0, 1], registered by name.

`get_grader(name, **options)` builds one; `reference_free()` lists those usable as verifiers
(answer_parses, self_consistency, prompt_tests, json_valid, json_schema, tool_calls, code,
judge).
"""

from tradeoff.evals.graders import (  # noqa: F401 - importing registers the built-in graders
    answer_parses,
    choice,
    code,
    contains,
    custom,
    exact,
    json_valid,
    judge,
    numeric,
    prompt_tests,
    regex,
    self_consistency,
    tool_calls,
)
from tradeoff.evals.graders.base import (
    GRADERS,
    Grader,
    Item,
    Score,
    get_grader,
    reference_free,
    register_grader,
)
from tradeoff.evals.graders.judge import GradingError

__all__ = [
    "GRADERS",
    "Grader",
    "GradingError",
    "Item",
    "Score",
    "get_grader",
    "reference_free",
    "register_grader",
]
