"""The shared limiter against a real PostgreSQL store, driven directly: settlements count once
however often they are retried, a replica that stops heartbeating has its reservations turned
into spend (and corrected if it settles after all), a store that goes away leaves each
replica its share, and what was settled while it came back is written without more traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from tradeoff.evals.store import open_store
from tradeoff.router.keys.keyfile import KeySpec, period_end
from tradeoff.router.keys.limits import Admission, Refused
from tradeoff.router.keys.limits_pg import ADMIT, PostgresLimits

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


def test_settlements_queued_while_the_store_comes_back_are_written_without_more_traffic(
    url: str,
) -> None:
    """The recovery flush writes what was pending when it began; a settlement queued while it
    runs (its wake-up taken by the settler, which skips writing while the store is down) must
    still be written once the store is back, with no later request to wake the settler."""

    async def go() -> None:
        limits = PostgresLimits(url, [KEY], timeout_s=10.0, retry_s=0.05)
        await limits.start()
        limits.settle(await limits.admit(KEY, UNIT, "req-1"), UNIT)  # the usage row exists
        await limits._flush()
        assert limits._pool is not None
        limits._pool.url = url.rsplit("/", 1)[0] + "/no_such_database"  # the store goes away
        await limits._pool.close()
        away = await limits.admit(KEY, UNIT, "req-2")
        assert away.local and limits.down_since is not None
        limits.settle(away, UNIT)
        with (
            psycopg.connect(url, autocommit=True) as locker,
            psycopg.connect(url, autocommit=True) as watcher,
        ):
            with locker.transaction():  # holds the row the recovery flush must update
                locker.execute("SELECT 1 FROM key_usage WHERE name = 'team' FOR UPDATE")
                limits._pool.url = url  # the store is back: the probe finds it and flushes
                await wait_until(lambda: flush_waits(watcher), "the recovery flush to block")
                late = await limits.admit(KEY, UNIT, "req-3")  # still by the share
                assert late.local
                limits.settle(late, UNIT)  # queued during the flush
                await asyncio.sleep(0.2)  # the settler wakes, finds the store down, waits
            await wait_until(lambda: limits.down_since is None, "the store to be back")
        await wait_until(lambda: limits.pending == 0, "the late settlement to be written")
        assert usage(url) == (3 * UNIT, 0, 3)
        await limits.stop()

    run(go())


def flush_waits(con: psycopg.Connection[Any]) -> bool:
    """Whether a limits connection waits for a lock (outside a transaction: the view is read
    once per transaction)."""
    row = con.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'tradeoff-limits' AND wait_event_type = 'Lock'"
    ).fetchone()
    return row is not None and int(row[0]) > 0


async def wait_until(ready: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not ready():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_a_settlement_racing_its_own_admission_still_counts_once(url: str) -> None:
    """An admission whose client gave up (a timeout) while the server still ran it may commit
    its hold while the request's settlement runs: the settlement must settle that hold, not
    skip it (a hold committed after the settlement's snapshot began)."""

    async def go() -> None:
        limits = PostgresLimits(url, [KEY], timeout_s=10.0)
        await limits.start()
        with (
            psycopg.connect(url, autocommit=True) as admitter,
            psycopg.connect(url, autocommit=True) as watcher,
        ):
            params = {
                "id": "req-1", "replica": limits.replica, "name": KEY.name,
                "period": KEY.budget_period, "reserve": 3 * UNIT, "rpm": None,
                "budget": KEY.budget_nusd,
            }  # fmt: skip
            with admitter.transaction():  # the admission, still running on the server
                row = admitter.execute(ADMIT, params).fetchone()
                assert row is not None and row[1] is not None  # admitted, not yet committed
                start = row[1]
                # The replica went on by its share and settles the request meanwhile.
                limits.settle(Admission(KEY, start, 0, limits.replica, True, "req-1"), 2 * UNIT)
                await wait_until(lambda: flush_waits(watcher), "the settlement to meet the hold")
            await wait_until(lambda: limits.pending == 0, "the settlement to be written")
        assert usage(url) == (2 * UNIT, 0, 1)
        await limits.stop()

    run(go())


def test_a_settlement_lands_in_the_period_its_hold_reserved_in(url: str) -> None:
    """A request admitted just before a period ends, whose admission's answer was lost (so the
    replica counted it by its share, in the next period): its reservation is released where it
    was made, not left holding the old period's row while the new one goes negative."""

    async def go() -> None:
        limits = PostgresLimits(url, [KEY])
        await limits.start()
        held = await limits.admit(KEY, 3 * UNIT, "req-1")
        later = period_end(KEY.budget_period, held.period_start)
        limits.settle(replace(held, period_start=later, reserved_nusd=0, local=True), 2 * UNIT)
        await limits._flush()
        with open_store(url, create=False).connect() as con:
            rows = con.execute(
                "SELECT period_start, spent_nusd, reserved_nusd FROM key_usage ORDER BY 1"
            ).fetchall()
        assert [(r[0], int(r[1]), int(r[2])) for r in rows] == [(held.period_start, 2 * UNIT, 0)]
        await limits.stop()

    run(go())


def test_a_backlog_is_written_a_batch_at_a_time_and_entirely(url: str) -> None:
    """More settlements than one batch (an outage's worth): every one is written, each once,
    and no batch holds the key's row longer than its own SETTLE_BATCH statements."""
    from tradeoff.router.keys import limits_pg

    big = KeySpec("team", "s", rpm=None, budget_usd=1.0)

    async def go() -> None:
        limits = PostgresLimits(url, [big])
        await limits.start()
        n = limits_pg.SETTLE_BATCH * 2 + 7
        start = (await limits.admit(big, 0, "probe")).period_start
        limits.settle(Admission(big, start, 0, limits.replica, True, "probe"), 0)
        for i in range(n):  # admitted by a share while the store was away: no holds yet
            limits._queue(Admission(big, start, 0, limits.replica, True, f"r-{i}"), UNIT, 1)
        batches: list[int] = []
        flush_once = limits._flush_once

        async def counted() -> bool:
            batches.append(min(len(limits._pending), limits_pg.SETTLE_BATCH))
            return await flush_once()

        limits._flush_once = counted  # type: ignore[method-assign]
        assert await limits._flush()
        assert limits.pending == 0
        assert max(batches) == limits_pg.SETTLE_BATCH and len(batches) >= 3
        assert usage(url) == (n * UNIT, 0, n + 1)
        await limits.stop()

    run(go())
