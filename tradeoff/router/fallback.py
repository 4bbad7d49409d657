"""Retries, fallbacks along a plan's order, and cooldown of failing upstreams.

Each model of the plan is tried once, in order, skipping to the next on a 429/5xx/timeout/
connection error; the last one is retried up to `retries` more times (after its Retry-After or a
short backoff, within the deadline). A model that just failed cools down: for `cooldown_s` it
moves to the back of every plan, so healthy models are tried first, yet a plan whose models all
cool down is still tried rather than refused. A model with an attempt in flight that has run past
its usual latency (router/stalls.py) moves back the same way until that attempt ends.

Time. Every attempt has its own limit (`attempt_timeout`): the model's `litellm_params.timeout`
if set, and, while another model is left to fall back to, never more than half the time left,
so a hung first model cannot eat the whole deadline. A Retry-After longer than the time left is
not waited out: the request fails over (or fails, with that Retry-After) at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tradeoff.evals.upstream import UpstreamError
from tradeoff.router.stalls import Stalls

T = TypeVar("T")


class Cooldowns:
    """When each failing model may be tried first again."""

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self._until: dict[str, float] = {}
        self.stalls = Stalls()  # this process's attempts in flight (never shared)

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
        """The plan's models, stalled then cooling ones moved to the back (order otherwise
        kept)."""
        models = self.stalls.order(models)
        ready = [m for m in models if not self.cooling(m)]
        return ready + [m for m in models if m not in ready]


@dataclass
class Trace:
    """What happened on the way to an answer: for the log, the headers and the metrics."""

    attempts: int = 0
    fallbacks: int = 0
    model: str | None = None  # the model that answered, or the last one tried
    errors: list[str] = field(default_factory=list)


FALLBACK_SHARE = 0.5  # of the time left, at most, for an attempt with a fallback after it


def attempt_timeout(remaining: float, own: float | None, *, fallback_left: bool) -> float:
    """How long one attempt may run: its model's own timeout (`own`, if any) within the time
    `remaining`; and while a fallback is left, at most `FALLBACK_SHARE` of that time."""
    limit = remaining if own is None else min(own, remaining)
    if fallback_left:
        limit = min(limit, remaining * FALLBACK_SHARE)
    return limit


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
    own_timeout: Callable[[str], float | None] = lambda model: None,
    kind: str = "complete",
) -> T:
    """Call `attempt(model, timeout_s)` along `models` until one succeeds or the deadline passes.

    `own_timeout(model)` is the model's configured limit per attempt (None: none). `trace`
    records the attempts; the model that answered is `trace.model`. `kind` names what an
    attempt waits for ("complete": the whole answer, "stream": its first event), whose usual
    latency tells a stalled attempt.
    """
    stalls = cooldowns.stalls
    order = cooldowns.order(models)
    schedule = order + [order[-1]] * retries
    last: UpstreamError | None = None
    for i, model in enumerate(schedule):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if i > 0 and model == schedule[i - 1]:
            assert last is not None
            pause = last.retry_after or 0.05 * 2 ** (i - len(order))
            if pause >= remaining:
                break  # waiting would outlive the deadline: answer now (with its Retry-After)
            await asyncio.sleep(pause)
            remaining = deadline - time.monotonic()
        elif i > 0:
            trace.fallbacks += 1
        trace.attempts += 1
        trace.model = model
        limit = attempt_timeout(remaining, own_timeout(model), fallback_left=i < len(order) - 1)
        flight = stalls.started(model, kind, limit)
        try:
            value = await attempt(model, limit)
        except UpstreamError as exc:
            stalls.ended(model, kind, flight, ok=False)
            last = exc
            trace.errors.append(f"{model}: {exc.message}")
            if exc.kind != "http" or exc.status == 429 or (exc.status or 0) >= 500:
                cooldowns.failed(model, exc.retry_after)
            if not exc.falls_back:
                raise AllFailed(trace, exc) from None
            if i >= len(order) - 1 and not exc.retryable:
                break
            continue
        except BaseException:  # cancelled (the client left): the attempt is no longer in flight
            stalls.ended(model, kind, flight, ok=False)
            raise
        stalls.ended(model, kind, flight, ok=True)
        cooldowns.succeeded(model)
        return value
    if last is None:
        last = UpstreamError(
            "the request's deadline passed before any upstream answered", kind="timeout"
        )
    raise AllFailed(trace, last)
