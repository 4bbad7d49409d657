"""Upstream cooldowns shared by every replica on one PostgreSQL store.

`Cooldowns` (router/fallback.py) is consulted on every request, so a shared lookup would put a
store round trip on the hot path (benchmarks/bench_replicas.py measures it: about 0.1-0.2 ms
per request against ~0.5 us for the local dict, and one more thing to fail when the store is
away). Instead each replica keeps its own cooldowns in memory, as before, and tells the others
when one starts or ends, with PostgreSQL's LISTEN/NOTIFY: a replica that sees a model fail
makes every replica try it last within milliseconds, not after each one has failed on it.

What is sent: `failed` with the wait (relative seconds, so clocks need not agree) when a model
starts cooling or its wait grows by more than a second, and `ok` when a cooling model answers
again, over router/replicas/broadcast.py (dropped while the store is unreachable: each replica still
cools down on what it sees itself; a replica that starts later learns only of cooldowns begun
after it listens).
"""

from __future__ import annotations

import time
from typing import Any

from tradeoff.router.fallback import Cooldowns
from tradeoff.router.metrics import family
from tradeoff.router.replicas.broadcast import Broadcast

__all__ = ["CHANNEL", "SharedCooldowns"]

CHANNEL = "tradeoff_cooldowns"


class SharedCooldowns(Cooldowns):
    """`Cooldowns` whose changes reach the other replicas on store `url`."""

    def __init__(self, cooldown_s: float, url: str, *, retry_s: float = 1.0) -> None:
        super().__init__(cooldown_s)
        self.channel = Broadcast(url, CHANNEL, self._apply, retry_s=retry_s)
        self._told: dict[str, float] = {}  # model -> the cooldown end the others were told of

    # -- the Cooldowns interface (the hot path: memory only) ---------------------------------
    def failed(self, model: str, retry_after: float | None = None) -> None:
        super().failed(model, retry_after)
        until = self._until[model]
        if until > self._told.get(model, 0.0) + 1.0:
            self._told[model] = until
            self.channel.send({"e": "failed", "m": model, "w": round(until - time.monotonic(), 3)})

    def succeeded(self, model: str) -> None:
        cooling = model in self._until
        super().succeeded(model)
        if cooling or self._told.pop(model, None) is not None:
            self._told.pop(model, None)
            self.channel.send({"e": "ok", "m": model, "w": 0.0})

    def _apply(self, message: dict[str, Any]) -> None:
        event, model = message["e"], str(message["m"])
        if event == "failed":
            until = time.monotonic() + float(message.get("w") or 0.0)
            if until > self._until.get(model, 0.0):
                self._until[model] = until
                self._told[model] = until  # known everywhere already: no need to repeat it
        elif event == "ok":
            self._until.pop(model, None)
            self._told.pop(model, None)

    def render(self) -> list[str]:
        """Prometheus lines: messages exchanged with the other replicas."""
        sent, heard = self.channel.sent, self.channel.heard
        return [
            *family("tradeoff_cooldown_messages_total", "counter",
                    "Cooldown changes told to, and heard from, the other replicas.",
                    [((("direction", "sent"),), sent), ((("direction", "heard"),), heard)]),
            *family("tradeoff_cooldowns_listening", "gauge",
                    "1 while this replica hears the others.", [((), int(self.channel.listening))]),
        ]  # fmt: skip

    async def start(self) -> None:
        await self.channel.start()

    async def stop(self) -> None:
        await self.channel.stop()
