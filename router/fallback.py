"""Retries, fallbacks along a plan's order, and cooldown of failing upstreams.

Each model of the plan is tried once, in order, skipping to the next on a 429/5xx/timeout/
connection error; the last one is retried up to `retries` more times (after its Retry-After or a
short backoff, within the deadline). A model that just failed cools down: for `cooldown_s` it
moves to the back of every plan, so healthy models are tried first, yet a plan whose models all
cool down is still tried rather than refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from evals.upstream import UpstreamError

T = TypeVar("T")


class Cooldowns:
    """When each failing model may be tried first again."""

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self._until: dict[str, float] = {}

    def failed(self, model: str, retry_after: float | None = None) -> None:
        wait = max(self.cooldown_s, retry_after or 0.0)
        self._until[model] = time.monotonic() + wait

    def succeeded(self, model: str) -> None:
        self._until.pop(model, None)

    def cooling(self, model: str) -> bool:
        until = self._until.get(model)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._until[model]
            return False
        return True

    def order(self, models: Sequence[str]) -> list[str]:
        """The plan's models, cooling ones moved to the back (order otherwise kept)."""
        ready = [m for m in models if not self.cooling(m)]
        return ready + [m for m in models if m not in ready]


@dataclass
class Trace:
    """What happened on the way to an answer: for the log, the headers and the metrics."""

    attempts: int = 0
    fallbacks: int = 0
    model: str | None = None  # the model that answered, or the last one tried
    errors: list[str] = field(default_factory=list)


class AllFailed(Exception):
    """No model of the plan answered; `last` is the final upstream error."""

    def __init__(self, trace: Trace, last: UpstreamError) -> None:
        super().__init__(last.message)
        self.trace = trace
        self.last = last


async def with_fallback(
    models: Sequence[str],
    attempt: Callable[[str, float], Awaitable[T]],
    *,
    cooldowns: Cooldowns,
    deadline: float,
    retries: int,
    trace: Trace,
) -> T:
    """Call `attempt(model, timeout_s)` along `models` until one succeeds or the deadline passes.

    `trace` records the attempts; the model that answered is `trace.model`.
    """
    order = cooldowns.order(models)
    schedule = order + [order[-1]] * retries
    last: UpstreamError | None = None
    for i, model in enumerate(schedule):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if i > 0 and model == schedule[i - 1]:
            assert last is not None
            pause = min(last.retry_after or 0.05 * 2 ** (i - len(order)), remaining - 0.01)
            if pause > 0:
                await asyncio.sleep(pause)
            remaining = deadline - time.monotonic()
        elif i > 0:
            trace.fallbacks += 1
        trace.attempts += 1
        trace.model = model
        try:
            value = await attempt(model, remaining)
        except UpstreamError as exc:
            last = exc
            trace.errors.append(f"{model}: {exc.message}")
            if exc.kind != "http" or exc.status == 429 or (exc.status or 0) >= 500:
                cooldowns.failed(model, exc.retry_after)
            if not exc.falls_back:
                raise AllFailed(trace, exc) from None
            if i >= len(order) - 1 and not exc.retryable:
                break
            continue
        cooldowns.succeeded(model)
        return value
    if last is None:
        last = UpstreamError(
            "the request's deadline passed before any upstream answered", kind="timeout"
        )
    raise AllFailed(trace, last)
