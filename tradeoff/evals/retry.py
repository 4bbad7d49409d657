"""Retries with exponential backoff for rate limits, server errors and timeouts.

A retryable failure (429, 408, 5xx, a dropped connection) is tried again up to `max_retries`
times. The wait is the provider's Retry-After when it sent one (capped at `max_wait_s`), else
`base_s * 2**attempt` with +-50% jitter so parallel callers do not retry in lockstep.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from tradeoff.evals.call import CallResult
from tradeoff.evals.limits import ModelLimiter


def backoff_s(
    attempt: int, retry_after_s: float | None, *, base_s: float, max_wait_s: float
) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    if retry_after_s is not None:
        return min(retry_after_s, max_wait_s)
    return min(max_wait_s, base_s * 2**attempt) * (0.5 + random.random())


async def call_with_retries(
    call: Callable[[], Awaitable[CallResult]],
    limiter: ModelLimiter,
    *,
    max_retries: int = 3,
    base_s: float = 0.5,
    max_wait_s: float = 60.0,
) -> CallResult:
    """Run `call` inside the model's limiter, retrying retryable failures.

    The returned result carries the number of attempts; cost adds up over attempts (a failed
    attempt can still be billed for what it streamed).
    """
    spent = 0.0
    attempt = 0
    while True:
        async with limiter.slot():
            result = await call()
        spent += result.cost_usd
        if not result.retryable or attempt >= max_retries:
            result.attempts = attempt + 1
            result.cost_usd = spent
            return result
        wait = backoff_s(attempt, result.retry_after_s, base_s=base_s, max_wait_s=max_wait_s)
        if result.retry_after_s is not None:
            limiter.pause(wait)
        await asyncio.sleep(wait)
        attempt += 1
