"""The grader contract: `Grader.grade(response, item) -> Score`, found by name in a registry.

A grader scores one response to one item in [0, 1]. Graders are registered with
`@register_grader("name")` and built with `get_grader(name, **options)`, so the `grader` column
of an item (or a policy file naming a verifier) rebuilds them. Per-item options come from the
item's `metadata` (e.g. `tolerance`, `schema`, `rubric`) and win over the grader's defaults.

Graders with `needs_reference = False` judge a response on its own (it parses, the JSON is
valid, the code passes the item's own tests): policies can use them as *verifiers*.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from tradeoff.evals.errors import UsageError


@dataclass(frozen=True)
class Item:
    """One eval item, as the `items` table holds it."""

    dataset: str
    item_id: str
    task: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    reference: str | None = None
    grader: str | None = None
    split: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def chat(self) -> list[dict[str, Any]]:
        """The chat messages to send: `messages` if set, else the prompt as one user turn."""
        if self.messages:
            return list(self.messages)
        return [{"role": "user", "content": self.prompt or ""}]


@dataclass(frozen=True)
class Score:
    """A score in [0, 1] and, when useful, why."""

    value: float
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.value >= 0.5


class Grader(ABC):
    """Scores responses. Subclasses set `name` and implement `grade`."""

    name: ClassVar[str]
    needs_reference: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    def option(self, item: Item, key: str, default: Any = None) -> Any:
        """A per-item option from item.metadata, else the grader's, else `default`."""
        if key in item.metadata:
            return item.metadata[key]
        return self.options.get(key, default)

    @abstractmethod
    def grade(self, response: str, item: Item) -> Score:
        """Score one response to one item."""

    async def agrade(self, response: str, item: Item) -> Score:
        """Async form for the runner; graders that wait on I/O (code, judge) override it."""
        return self.grade(response, item)

    def grade_group(self, responses: list[str], item: Item) -> list[Score]:
        """Scores of several sampled responses to one item, judged together: a verifier such
        as self-consistency compares them; by default each is graded on its own."""
        return [self.grade(r, item) for r in responses]

    async def agrade_group(self, responses: list[str], item: Item) -> list[Score]:
        """Async form of `grade_group` (the proxy's best-of-k path)."""
        return [await self.agrade(r, item) for r in responses]

    def check(self) -> None:  # noqa: B027 - optional hook, most graders need no check
        """Raise a TradeoffError if this grader cannot work as configured (before any call)."""


GRADERS: dict[str, type[Grader]] = {}
G = TypeVar("G", bound=type[Grader])


def register_grader(name: str) -> Callable[[G], G]:
    """Class decorator: make a grader findable by `name`."""

    def decorate(cls: G) -> G:
        cls.name = name
        GRADERS[name] = cls
        return cls

    return decorate


def _load_builtin() -> None:
    # Importing the package registers every built-in grader.
    importlib.import_module("tradeoff.evals.graders")


def get_grader(spec: str, **options: Any) -> Grader:
    """The grader named `spec`, or a user callable given as `module:function`.

    Raises UsageError naming the known graders when `spec` is neither.
    """
    _load_builtin()
    if spec in GRADERS:
        grader = GRADERS[spec](**options)
    elif ":" in spec:
        grader = GRADERS["callable"](target=spec, **options)
    else:
        raise UsageError(unknown_grader(spec))
    grader.check()
    return grader


def is_grader_name(spec: str) -> bool:
    """Whether `spec` names a built-in grader or is a `module:function` (not imported here)."""
    _load_builtin()
    return (spec in GRADERS and spec != "callable") or ":" in spec


def unknown_grader(spec: str) -> str:
    """What to say about a grader name that is neither built in nor `module:function`."""
    _load_builtin()
    known = ", ".join(sorted(name for name in GRADERS if name != "callable"))
    return f"unknown grader {spec!r}; use one of {known}, or module:function for your own"


def reference_free() -> list[str]:
    """Names of graders usable as verifiers (they need no reference answer)."""
    _load_builtin()
    return sorted(name for name, cls in GRADERS.items() if not cls.needs_reference)
