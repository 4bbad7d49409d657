"""Per-model call limits: concurrency, requests per minute, and pauses a provider asks for.

models.yaml may set `max_concurrency` and `rpm` on an entry (or `rpm` in litellm_params, as
LiteLLM's router does). A 429 with Retry-After pauses every call to that model, not just the
one that got it: the provider is telling us about the model, not the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tradeoff.evals.registry import ModelEntry


class ModelLimiter:
    """Admits calls to one model: at most `max_concurrency` at once, starts spaced by 60/rpm."""

    def __init__(self, *, max_concurrency: int | None = None, rpm: float | None = None) -> None:
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._interval = 60.0 / rpm if rpm else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Hold back every new call to this model for `seconds` (a provider's Retry-After)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def _wait_turn(self) -> None:
        if not self._interval and self._paused_until <= time.monotonic():
            return
        async with self._lock:  # one waiter at a time keeps the spacing exact
            while True:
                now = time.monotonic()
                wait = max(self._next_start, self._paused_until) - now
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._next_start = time.monotonic() + self._interval

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one call's place: concurrency slot, then rate/pauses."""
        if self._slots is None:
            await self._wait_turn()
            yield
            return
        async with self._slots:
            await self._wait_turn()
            yield


def _positive(entry: ModelEntry, key: str) -> float | None:
    value = entry.extra.get(key, entry.litellm_params.get(key))
    if value is None:
        return None
    number = float(value)
    return number if number > 0 else None


def limiter_for(entry: ModelEntry) -> ModelLimiter:
    """The limiter an entry's `max_concurrency` and `rpm` ask for (unlimited when unset)."""
    concurrency = _positive(entry, "max_concurrency")
    return ModelLimiter(
        max_concurrency=int(concurrency) if concurrency else None, rpm=_positive(entry, "rpm")
    )
