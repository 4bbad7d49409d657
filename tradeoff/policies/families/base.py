"""The policy contract: `Policy.plan(request) -> Plan`, and the registry of families by name.

A policy is a family (a class registered here) plus JSON-serialisable parameters and the models
it may use. The proxy, `tradeoff route` and the replay engine all go through `plan()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from tradeoff.policies.errors import PolicyParamsError, UnknownFamilyError


@dataclass(frozen=True)
class RouteRequest:
    """What a policy sees of a request: the prompt text (messages flattened) and a task hint."""

    prompt: str
    task: str | None = None


@dataclass(frozen=True)
class Plan:
    """Which models to try, in order.

    `models[0]` is called first. Later models are fallbacks on errors and, when `verifier` is
    set, escalations when the verifier rejects an answer (cascade). `samples > 1` asks for that
    many samples of `models[0]` (in one call), kept if the verifier accepts one of them, before
    escalating to the next model with one call each (best-of-k).
    """

    models: tuple[str, ...]
    verifier: str | None = None
    samples: int = 1
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Policy(ABC):
    """A routing policy. Subclasses set `family` and register with `@register_family`."""

    family: ClassVar[str]

    @property
    @abstractmethod
    def models(self) -> tuple[str, ...]:
        """Every model this policy may route to."""

    @abstractmethod
    def plan(self, request: RouteRequest) -> Plan:
        """The plan for one request. Must be deterministic."""

    def plan_many(self, requests: list[RouteRequest]) -> list[Plan]:
        """Plans for many requests (replay); families with a faster batch path override it."""
        return [self.plan(request) for request in requests]

    @abstractmethod
    def to_params(self) -> dict[str, Any]:
        """JSON-serialisable parameters; `from_params(to_params())` rebuilds an equal policy."""

    @classmethod
    @abstractmethod
    def from_params(cls, params: dict[str, Any]) -> Policy:
        """Rebuild a policy from `to_params()` output."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Policy)
            and self.family == other.family
            and self.to_params() == other.to_params()
        )

    def __hash__(self) -> int:
        return hash((self.family, self.models))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(models={list(self.models)})"


FAMILIES: dict[str, type[Policy]] = {}
P = TypeVar("P", bound=type[Policy])


def register_family(cls: P) -> P:
    """Class decorator: make a family findable by its name (from a policy file or a store row)."""
    FAMILIES[cls.family] = cls
    return cls


def create_policy(family: str, params: dict[str, Any]) -> Policy:
    """Rebuild a policy of a registered family from its JSON parameters."""
    _load_builtin_families()
    try:
        cls = FAMILIES[family]
    except KeyError:
        raise UnknownFamilyError(
            f"unknown policy family {family!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None
    return cls.from_params(params)


def flatten_messages(messages: list[dict[str, Any]]) -> str:
    """The prompt text a policy sees for chat messages: each message's text, one per line.

    Content parts (OpenAI's `[{"type": "text", "text": ...}]`) contribute their text parts only.
    The proxy and the replay of recorded items both use this, so a fitted policy sees the same
    text at serve time as at fit time.
    """
    lines: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            lines.append(content)
        elif isinstance(content, list):
            lines.extend(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
    return "\n".join(lines)


def require_models(family: str, models: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate a family's model list: non-empty names, no duplicates."""
    names = tuple(models)
    if not names:
        raise PolicyParamsError(f"a {family} policy needs at least one model; name one")
    for name in names:
        if not isinstance(name, str) or not name:
            raise PolicyParamsError(f"{family} policy: model names must be non-empty strings")
    if len(set(names)) != len(names):
        raise PolicyParamsError(f"{family} policy: a model is listed twice in {list(names)}")
    return names


def _load_builtin_families() -> None:
    """Import the bundled families so they register (kept out of import time of this module)."""
    import tradeoff.policies.families.bundled  # noqa: F401
