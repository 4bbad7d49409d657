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

from tradeoff.evals.store import is_url, resolve_db
from tradeoff.router.fallback import Cooldowns
from tradeoff.router.sessions import MemorySessions
from tradeoff.router.state import ProxyState

__all__ = ["build_cooldowns", "build_sessions", "start_shared", "stop_shared"]


def build_cooldowns(cooldown_s: float, db: str | os.PathLike[str] | None) -> Cooldowns:
    target = resolve_db(db)
    if is_url(target):
        from tradeoff.router.replicas.cooldowns import SharedCooldowns

        return SharedCooldowns(cooldown_s, str(target))
    return Cooldowns(cooldown_s)


def build_sessions(ttl_s: float, db: str | os.PathLike[str] | None) -> MemorySessions | None:
    """The session table (None: sessions off, `--session-ttl 0`)."""
    if ttl_s <= 0:
        return None
    target = resolve_db(db)
    if is_url(target):
        from tradeoff.router.replicas.sessions import SharedSessions

        return SharedSessions(ttl_s, str(target))
    return MemorySessions(ttl_s)


async def start_shared(state: ProxyState) -> None:
    """In the lifespan, once the request log has started (its replay seeds in-memory limits)."""
    for shared in (state.cooldowns, state.sessions):
        start = getattr(shared, "start", None)
        if start is not None:
            await start()
            state.metrics.collectors.append(shared.render)  # type: ignore[union-attr]
    if state.limits is not None:
        await state.limits.start()
        state.metrics.collectors.append(state.limits.render)


async def stop_shared(state: ProxyState) -> None:
    if state.limits is not None:
        await state.limits.stop()
    for shared in (state.cooldowns, state.sessions):
        stop = getattr(shared, "stop", None)
        if stop is not None:
            await stop()
