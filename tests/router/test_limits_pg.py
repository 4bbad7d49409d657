"""The shared limiter against a real PostgreSQL store, driven directly: settlements count once
however often they are retried, a replica that stops heartbeating has its reservations turned
into spend (and corrected if it settles after all), and a store that goes away leaves each
replica its share."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from evals.store import open_store
from router.keys import KeySpec
from router.limits import Refused
from router.limits_pg import PostgresLimits

KEY = KeySpec("team", "s", rpm=None, budget_usd=10e-6)  # 10,000 nano-USD
UNIT = 1000


def usage(url: str) -> tuple[int, int, int]:
    with open_store(url, create=False).connect() as con:
        row = con.execute(
            "SELECT coalesce(sum(spent_nusd), 0), coalesce(sum(reserved_nusd), 0), "
            "coalesce(sum(requests), 0) FROM key_usage WHERE name = 'team'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def url(pg_url: str) -> str:
    open_store(pg_url)  # migrated
    return pg_url


def test_a_retried_settlement_counts_once(url: str) -> None:
    async def go() -> None:
        limits = PostgresLimits(url, [KEY])
        await limits.start()
        admission = await limits.admit(KEY, 3 * UNIT, "req-1")
        assert usage(url) == (0, 3 * UNIT, 0)
        limits.settle(admission, 2 * UNIT)
        await limits._flush()
        limits._queue(admission, 2 * UNIT, 1)  # as if the first acknowledgement was lost
        await limits._flush()
        assert usage(url) == (2 * UNIT, 0, 1)
        await limits.stop()

    run(go())


def test_a_dead_replicas_reservations_become_spend_and_a_late_settlement_corrects_them(
    url: str,
) -> None:
    async def go() -> None:
        dead = PostgresLimits(url, [KEY])
        await dead.start()
        first = await dead.admit(KEY, 4 * UNIT, "req-a")
        await dead.admit(KEY, 4 * UNIT, "req-b")
        for task in dead._tasks:  # it stops heartbeating (a pause, or kill -9)
            task.cancel()
        await asyncio.gather(*dead._tasks, return_exceptions=True)
        live = PostgresLimits(url, [KEY], dead_after_s=0.5, heartbeat_s=0.1)
        await live.start()
        with pytest.raises(Refused):  # 8 of 10 held: no room for 4 more
            await live.admit(KEY, 4 * UNIT, "req-c")
        await asyncio.sleep(1.5)  # the live replica's heartbeat declares the other dead
        assert usage(url) == (8 * UNIT, 0, 0)  # held, so counted as spent: no overshoot
        dead.settle(first, 1 * UNIT)  # it was only paused: its late settlement corrects one
        await dead._flush()
        assert usage(url) == (5 * UNIT, 0, 1)
        await live.admit(KEY, 4 * UNIT, "req-d")  # room again
        await live.stop()
        if dead._pool is not None:
            await dead._pool.close()

    run(go())


def test_an_unreachable_store_leaves_each_replica_its_share(url: str) -> None:
    async def go() -> None:
        a = PostgresLimits(url, [KEY], heartbeat_s=0.1)
        b = PostgresLimits(url, [KEY], heartbeat_s=0.1)
        await a.start()
        await b.start()
        held = await a.admit(KEY, 2 * UNIT, "req-1")
        await asyncio.sleep(0.5)  # both have read the usage and counted two replicas
        assert a.replicas == b.replicas == 2
        for limits in (a, b):  # no heartbeat may hold a connection to the old store meanwhile
            limits._tasks, tasks = [], limits._tasks
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        a.url = b.url = url.rsplit("/", 1)[0] + "/no_such_database"  # the store goes away
        for limits in (a, b):
            assert limits._pool is not None
            await limits._pool.close()
            limits._pool.url = limits.url
        shares = 0
        for limits in (a, b):
            for i in range(10):
                try:
                    await limits.admit(KEY, UNIT, f"{id(limits)}-{i}")
                    shares += 1
                except Refused as refused:
                    assert "share" in refused.message
        assert shares == 8  # (10 - 2 in flight) units left, 4 for each: none beyond the budget
        assert a.down_since is not None and b.down_since is not None
        a.settle(held, 2 * UNIT)
        assert a.pending == 1  # waits for the store

    run(go())
