"""The policy contract: `Policy.plan(request) -> Plan`, and the registry of families by name.

A policy is a family (a class registered here) plus JSON-serialisable parameters and the models
it may use. The proxy, `tradeoff route` and the replay engine all go through `plan()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


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
    many samples of a model before escalating (best-of-k).
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

    @abstractmethod
    def to_params(self) -> dict[str, Any]:
        """JSON-serialisable parameters; `from_params(to_params())` rebuilds an equal policy."""

    @classmethod
    @abstractmethod
    def from_params(cls, params: dict[str, Any]) -> Policy:
        """Rebuild a policy from `to_params()` output."""


FAMILIES: dict[str, type[Policy]] = {}
P = TypeVar("P", bound=type[Policy])


def register_family(cls: P) -> P:
    """Class decorator: make a family findable by its name (from a policy file or a store row)."""
    FAMILIES[cls.family] = cls
    return cls


def create_policy(family: str, params: dict[str, Any]) -> Policy:
    from policies.errors import UnknownFamilyError  # local: keep this module dependency-free

    try:
        cls = FAMILIES[family]
    except KeyError:
        raise UnknownFamilyError(
            f"unknown policy family {family!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None
    return cls.from_params(params)
