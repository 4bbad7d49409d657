"""Small messages between the replicas on one PostgreSQL store, by LISTEN/NOTIFY.

What replicas keep in memory but must agree on (cooldowns: router/replicas/cooldowns.py; session
pins: router/replicas/sessions.py) is told to the others as it changes, never looked up on a
request's path. `Broadcast(url, channel, hear)` keeps one listening connection (reconnected
every `retry_s` while the store is away) and one publishing connection; `send(message)` only
queues, so the event loop never waits on the store. A replica ignores its own messages. While
the store is unreachable, messages are dropped (each replica still acts on what it sees itself),
and a replica that starts later hears only what is said after it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg

__all__ = ["Broadcast"]

log = logging.getLogger("tradeoff.router")


class Broadcast:
    """One channel: `send` a JSON-able dict to the other replicas; `hear` gets theirs."""

    def __init__(
        self,
        url: str,
        channel: str,
        hear: Callable[[dict[str, Any]], None],
        *,
        retry_s: float = 1.0,
        outbox: int = 1000,
    ) -> None:
        self.url, self.channel, self.retry_s = url, channel, retry_s
        self._hear = hear
        self.origin = uuid.uuid4().hex[:12]
        self.sent = 0
        self.heard = 0
        self.listening = False
        self._outbox: deque[str] = deque(maxlen=outbox)
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def started(self) -> bool:
        return self._wake is not None

    def send(self, message: dict[str, Any]) -> None:
        """Queue `message` for the others (dropped when not started: no loop to publish from)."""
        if self._wake is None:
            return
        self._outbox.append(json.dumps({"o": self.origin, **message}, separators=(",", ":")))
        self._wake.set()

    def receive(self, payload: str) -> None:
        """Apply one payload heard on the channel (ignored: our own, or unreadable)."""
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("o") in (None, self.origin):
            return
        self.heard += 1
        with contextlib.suppress(KeyError, TypeError, ValueError):
            self._hear(message)

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
            self.url,
            autocommit=True,
            connect_timeout=2,
            application_name=f"tradeoff-{self.channel}",
        )

    async def _listen_forever(self) -> None:
        while True:
            try:
                con = await self._connect()
                try:
                    await con.execute(f"LISTEN {self.channel}")
                    self.listening = True
                    async for note in con.notifies():
                        self.receive(note.payload)
                finally:
                    self.listening = False
                    with contextlib.suppress(Exception):
                        await con.close()
            except (psycopg.Error, OSError) as exc:
                log.debug("%s: listening failed (%s); retrying", self.channel, exc)
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
                                "SELECT pg_notify(%s, %s)", [self.channel, self._outbox[0]]
                            )
                            self._outbox.popleft()
                            self.sent += 1
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    log.debug("%s: telling the other replicas failed (%s)", self.channel, exc)
                    self._outbox.clear()  # stale by the time the store is back
                    con = None
        finally:
            if con is not None:
                with contextlib.suppress(Exception):
                    await con.close()
