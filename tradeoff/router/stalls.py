"""Stalls: a model whose attempt in flight has run past what it normally takes gets no new ones.

A cooldown starts only when an attempt fails, and a hung upstream fails only at its attempt's
timeout: without this, every request arriving meanwhile would wait out that timeout too. So each
attempt in flight is watched: once one has run longer than the model's usual latency (the p99 of
its recent successful attempts, at least `FLOOR_S`, never more than its timeout), the model
stalls and goes to the back of every plan, behind the healthy models, until that attempt answers
or fails. Requests behind a hung model go to the fallback at once.

The usual latency is per model and per kind of attempt (a complete answer, or a stream's first
event), learnt from this process's own traffic; until `MIN_SAMPLES` attempts have succeeded
nothing stalls, since a first slow answer is no evidence of a hang.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Sequence

__all__ = ["Stalls"]

WINDOW = 200  # recent successful attempts kept per model and kind
MIN_SAMPLES = 20  # before this many, a model's usual latency is unknown
FLOOR_S = 0.05  # never call an attempt stalled sooner (scheduling noise on a busy host)


class Stalls:
    """Attempts in flight and recent latencies, per model; all calls from the event loop."""

    def __init__(self) -> None:
        self._latencies: dict[tuple[str, str], deque[float]] = {}
        self._p99: dict[tuple[str, str], float] = {}
        # model -> {attempt id: (started, the age past which it stalls the model)}
        self._flight: dict[str, dict[int, tuple[float, float]]] = {}
        self._ids = itertools.count()

    def started(self, model: str, kind: str, timeout_s: float) -> int:
        """An attempt begins; returns its id for `ended`."""
        usual = self._p99.get((model, kind))
        limit = timeout_s if usual is None else min(max(usual, FLOOR_S), timeout_s)
        attempt = next(self._ids)
        self._flight.setdefault(model, {})[attempt] = (time.monotonic(), limit)
        return attempt

    def ended(self, model: str, kind: str, attempt: int, *, ok: bool) -> None:
        """The attempt answered (`ok`) or failed; a success's latency joins the model's record."""
        flight = self._flight.get(model, {})
        began = flight.pop(attempt, None)
        if not flight:
            self._flight.pop(model, None)
        if began is None or not ok:
            return
        record = self._latencies.setdefault((model, kind), deque(maxlen=WINDOW))
        record.append(time.monotonic() - began[0])
        if len(record) >= MIN_SAMPLES:
            ordered = sorted(record)
            self._p99[(model, kind)] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def stalled(self, model: str) -> bool:
        """Whether an attempt of `model` in flight has run past its model's usual latency."""
        flight = self._flight.get(model)
        if not flight:
            return False
        now = time.monotonic()
        return any(now - began > limit for began, limit in flight.values())

    def order(self, models: Sequence[str]) -> list[str]:
        """`models` with stalled ones moved to the back (order otherwise kept)."""
        stalled = [m for m in models if self.stalled(m)]
        if not stalled:
            return list(models)
        return [m for m in models if m not in stalled] + stalled
