"""Session pins shared by every replica on one PostgreSQL store.

Behind a balancer (or `serve --workers N`) the turns of one conversation land on any replica, so
a pin kept in one process's memory would let a conversation change models from turn to turn.
Each replica keeps its pins in memory, as `MemorySessions` does (a request's path never waits on
the store), and tells the others when a pin is made or moves, over router/replicas/broadcast.py; a
replica that hears of a pin applies it with the same rules as its own turns (a first turn sets
it, a new policy version replaces it, otherwise it only moves to a dearer model). A pin's
expiry is renewed on the others when half of what they were told has passed, so a conversation
that stays on one replica for a while keeps its pin everywhere.

A pin reaches the other replicas within milliseconds, but an agent's tool loop can send its next
turn sooner than that, to another replica. So a later turn of a conversation that a listening
replica has no pin for waits for one up to `PIN_WAIT_S` (`arrival`, awaited before routing):
at once if the pin arrives, the whole wait only for a conversation no replica has pinned (the
store away, every pin expired), which is then routed afresh and pins its model, as a single
replica does after a restart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tradeoff.router.metrics import family
from tradeoff.router.replicas.broadcast import Broadcast
from tradeoff.router.sessions import MemorySessions, Pin

__all__ = ["CHANNEL", "SharedSessions"]

CHANNEL = "tradeoff_sessions"
PIN_WAIT_S = 0.05  # how long a later turn without a pin waits for one from another replica


class SharedSessions(MemorySessions):
    """`MemorySessions` whose pins reach the other replicas on store `url`."""

    def __init__(
        self, ttl_s: float, url: str, *, max_entries: int = 100_000, retry_s: float = 1.0
    ) -> None:
        super().__init__(ttl_s, max_entries)
        self.channel = Broadcast(url, CHANNEL, self._apply, retry_s=retry_s, outbox=10_000)
        self._told: dict[str, tuple[Pin, float]] = {}  # key -> (pin, when) the others last heard
        self._awaited: dict[str, asyncio.Event] = {}  # key -> set when its pin arrives
        self.waits = {"arrived": 0, "timed_out": 0}

    hears_others = True

    async def arrival(self, key: str, timeout_s: float = PIN_WAIT_S) -> None:
        """Return once `key` has a pin here, or after `timeout_s` (at once when this replica
        hears no one: nothing can arrive)."""
        if self.get(key) is not None or not self.channel.listening:
            return
        event = self._awaited.setdefault(key, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            self.waits["arrived"] += 1
        except TimeoutError:
            self.waits["timed_out"] += 1
        finally:
            if self._awaited.get(key) is event:
                del self._awaited[key]

    def settle(self, key: str, pin: Pin, *, first_turn: bool = False) -> Pin:
        now = time.monotonic()
        held = super().settle(key, pin, first_turn=first_turn)
        told = self._told.get(key)
        if told is None or told[0] != held or first_turn or now - told[1] > self.ttl_s / 2:
            self._told[key] = (held, now)
            if len(self._told) > self.max_entries:
                self._told.pop(next(iter(self._told)))
            self.channel.send(
                {"k": key, "m": held.model, "r": held.rank, "v": held.version, "f": first_turn}
            )
        return held

    def _apply(self, message: dict[str, Any]) -> None:
        key = str(message["k"])
        pin = Pin(str(message["m"]), float(message["r"]), str(message["v"]))
        held = super().settle(key, pin, first_turn=bool(message.get("f")))
        event = self._awaited.pop(key, None)
        if event is not None:
            event.set()
        if held == pin:  # the others know it: no need to repeat it (a dearer one of ours: tell)
            self._told[key] = (held, time.monotonic())

    def render(self) -> list[str]:
        """Prometheus lines: pins exchanged with the other replicas."""
        sent, heard = self.channel.sent, self.channel.heard
        return [
            *family("tradeoff_session_messages_total", "counter",
                    "Session pins told to, and heard from, the other replicas.",
                    [((("direction", "sent"),), sent), ((("direction", "heard"),), heard)]),
            *family("tradeoff_sessions_listening", "gauge",
                    "1 while this replica hears the others' pins.",
                    [((), int(self.channel.listening))]),
            *family("tradeoff_session_pin_waits_total", "counter",
                    "Later turns that waited for another replica's pin, by outcome.",
                    [((("outcome", k),), v) for k, v in self.waits.items()]),
        ]  # fmt: skip

    async def start(self) -> None:
        await self.channel.start()

    async def stop(self) -> None:
        await self.channel.stop()
