"""What a replica shares with the others on its store, beyond the store's tables.

On a PostgreSQL store (`--db postgresql://...`) several `tradeoff serve` processes, on one host
(`--workers N`) or many, are replicas of one proxy. Through the store they already share the
request log (each row written once, by request id), the policies (each replica polls which
version serves) and the loop's graded pairs (policies/loop/traffic.py). Here are the rest:
upstream cooldowns (router/replicas/cooldowns.py), conversations' session pins
(router/replicas/sessions.py) and per-key limits (router/keys/limits_pg.py). On a DuckDB file all three
stay in the one process.
"""

from __future__ import annotations

import os
from typing import Protocol

from tradeoff.evals.store import is_url, resolve_db
from tradeoff.router.fallback import Cooldowns
from tradeoff.router.sessions import MemorySessions
from tradeoff.router.state import ProxyState

__all__ = ["Replicated", "build_cooldowns", "build_sessions", "start_shared", "stop_shared"]


class Replicated(Protocol):
    """A part with a life of its own beside the requests: started in the proxy's lifespan
    (connect, listen, seed), stopped at shutdown, and rendering its own /metrics lines."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def render(self) -> list[str]: ...


def build_cooldowns(
    cooldown_s: float, db: str | os.PathLike[str] | None, replicated: list[Replicated]
) -> Cooldowns:
    """The cooldowns; shared ones (a PostgreSQL store) are added to `replicated`."""
    target = resolve_db(db)
    if is_url(target):
        from tradeoff.router.replicas.cooldowns import SharedCooldowns

        shared = SharedCooldowns(cooldown_s, str(target))
        replicated.append(shared)
        return shared
    return Cooldowns(cooldown_s)


def build_sessions(
    ttl_s: float, db: str | os.PathLike[str] | None, replicated: list[Replicated]
) -> MemorySessions | None:
    """The session table (None: sessions off, `--session-ttl 0`); shared ones (a PostgreSQL
    store) are added to `replicated`."""
    if ttl_s <= 0:
        return None
    target = resolve_db(db)
    if is_url(target):
        from tradeoff.router.replicas.sessions import SharedSessions

        shared = SharedSessions(ttl_s, str(target))
        replicated.append(shared)
        return shared
    return MemorySessions(ttl_s)


async def start_shared(state: ProxyState) -> None:
    """In the lifespan, once the request log has started (its replay seeds in-memory limits)."""
    for part in state.replicated:
        await part.start()
        state.metrics.collectors.append(part.render)


async def stop_shared(state: ProxyState) -> None:
    for part in reversed(state.replicated):
        await part.stop()
