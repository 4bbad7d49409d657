"""Upstream cooldowns shared by every replica on one PostgreSQL store.

`Cooldowns` (router/fallback.py) is consulted on every request, so a shared lookup would put a
store round trip on the hot path (benchmarks/bench_replicas.py measures it: about 0.1-0.2 ms
per request against ~0.5 us for the local dict, and one more thing to fail when the store is
away). Instead each replica keeps its own cooldowns in memory, as before, and tells the others
when one starts or ends, with PostgreSQL's LISTEN/NOTIFY: a replica that sees a model fail
makes every replica try it last within milliseconds, not after each one has failed on it.

What is sent: `failed` with the wait (relative seconds, so clocks need not agree) when a model
starts cooling or its wait grows by more than a second, and `ok` when a cooling model answers
again. A replica ignores its own messages. When the store is unreachable, messages are dropped
(each replica still cools down on what it sees itself) and the listener reconnects every
`retry_s`; a replica that starts later learns only of cooldowns begun after it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from typing import Any

import psycopg

from router.fallback import Cooldowns

__all__ = ["CHANNEL", "SharedCooldowns"]

log = logging.getLogger("tradeoff.router")
CHANNEL = "tradeoff_cooldowns"


class SharedCooldowns(Cooldowns):
    """`Cooldowns` whose changes reach the other replicas on store `url`."""

    def __init__(self, cooldown_s: float, url: str, *, retry_s: float = 1.0) -> None:
        super().__init__(cooldown_s)
        self.url, self.retry_s = url, retry_s
        self.origin = uuid.uuid4().hex[:12]
        self.sent = 0
        self.heard = 0
        self._told: dict[str, float] = {}  # model -> the cooldown end the others were told of
        self._outbox: deque[str] = deque(maxlen=1000)
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = False

    # -- the Cooldowns interface (the hot path: memory only) ---------------------------------
    def failed(self, model: str, retry_after: float | None = None) -> None:
        super().failed(model, retry_after)
        until = self._until[model]
        if until > self._told.get(model, 0.0) + 1.0:
            self._told[model] = until
            self._send("failed", model, until - time.monotonic())

    def succeeded(self, model: str) -> None:
        cooling = model in self._until
        super().succeeded(model)
        if cooling or self._told.pop(model, None) is not None:
            self._told.pop(model, None)
            self._send("ok", model, 0.0)

    def _send(self, event: str, model: str, wait_s: float) -> None:
        if self._wake is None:
            return  # not started (no event loop to publish from)
        message = {"o": self.origin, "e": event, "m": model, "w": round(wait_s, 3)}
        self._outbox.append(json.dumps(message, separators=(",", ":")))
        self._wake.set()

    def hear(self, payload: str) -> None:
        """Apply another replica's message."""
        try:
            message = json.loads(payload)
            origin, event, model = message["o"], message["e"], str(message["m"])
            wait = float(message.get("w") or 0.0)
        except (ValueError, KeyError, TypeError):
            return
        if origin == self.origin:
            return
        self.heard += 1
        if event == "failed":
            until = time.monotonic() + wait
            if until > self._until.get(model, 0.0):
                self._until[model] = until
                self._told[model] = until  # known everywhere already: no need to repeat it
        elif event == "ok":
            self._until.pop(model, None)
            self._told.pop(model, None)

    def render(self) -> list[str]:
        """Prometheus lines: messages exchanged with the other replicas."""
        name = "tradeoff_cooldown_messages_total"
        return [
            f"# HELP {name} Cooldown changes told to, and heard from, the other replicas.",
            f"# TYPE {name} counter",
            f'{name}{{direction="sent"}} {self.sent}',
            f'{name}{{direction="heard"}} {self.heard}',
            "# HELP tradeoff_cooldowns_listening 1 while this replica hears the others.",
            "# TYPE tradeoff_cooldowns_listening gauge",
            f"tradeoff_cooldowns_listening {int(self.listening)}",
        ]

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.ensure_future(self._listen_forever()),
            asyncio.ensure_future(self._publish_forever()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=2, application_name="tradeoff-cooldowns"
        )

    async def _listen_forever(self) -> None:
        while True:
            try:
                con = await self._connect()
                try:
                    await con.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    async for note in con.notifies():
                        self.hear(note.payload)
                finally:
                    self.listening = False
                    with contextlib.suppress(Exception):
                        await con.close()
            except (psycopg.Error, OSError) as exc:
                log.debug("cooldowns: listening failed (%s); retrying", exc)
            await asyncio.sleep(self.retry_s)

    async def _publish_forever(self) -> None:
        assert self._wake is not None
        con: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    async with asyncio.timeout(5):
                        if con is None or con.closed or con.broken:
                            con = await self._connect()
                        while self._outbox:
                            await con.execute(
                                "SELECT pg_notify(%s, %s)", [CHANNEL, self._outbox[0]]
                            )
                            self._outbox.popleft()
                            self.sent += 1
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    log.debug("cooldowns: telling the other replicas failed (%s)", exc)
                    self._outbox.clear()  # stale by the time the store is back
                    con = None
        finally:
            if con is not None:
                with contextlib.suppress(Exception):
                    await con.close()
