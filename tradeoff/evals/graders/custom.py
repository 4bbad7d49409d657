"""A user's own grader given as `module:function`.

The function takes `(response: str, item: Item)` and returns a number in [0, 1], a bool, or a
`Score`. The module is imported when the grader is built, so a typo fails before any call.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from tradeoff.evals.errors import UsageError
from tradeoff.evals.graders.base import Grader, Item, Score, register_grader


def load_callable(target: str) -> Callable[..., Any]:
    """Import `module:function` (dots allowed in both parts)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UsageError(f"grader {target!r}: write a custom grader as module:function")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"grader {target!r}: cannot import {module_name} ({exc}); check the name and "
            "that it is on PYTHONPATH"
        ) from None
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UsageError(f"grader {target!r}: {module_name} has no {attr}")
    if not callable(obj):
        raise UsageError(f"grader {target!r}: {attr} is not callable")
    return obj


@register_grader("callable")
class CallableGrader(Grader):
    """Calls the user's function; option `target` = "module:function"."""

    def check(self) -> None:
        target = self.options.get("target")
        if not isinstance(target, str):
            raise UsageError("grader callable needs a target: write the grader as module:function")
        self.function = load_callable(target)

    def grade(self, response: str, item: Item) -> Score:
        return _to_score(self.function(response, item), self.options["target"])

    async def agrade(self, response: str, item: Item) -> Score:
        value = self.function(response, item)
        if inspect.isawaitable(value):
            value = await value
        return _to_score(value, self.options["target"])


def _to_score(value: Any, target: str) -> Score:
    if isinstance(value, Score):
        return value
    if isinstance(value, bool | int | float):
        return Score(min(1.0, max(0.0, float(value))))
    raise UsageError(f"grader {target}: returned {type(value).__name__}; return a number or Score")
