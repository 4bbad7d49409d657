"""Per-key limits shared by every replica on one PostgreSQL store (router/keys/limits.py).

**One statement per admission.** `key_usage` holds one row per key and budget period: the
spend, the reservations in flight, and the current minute's request count. Admitting a request
is a single upsert whose `WHERE` is the limit check, so the row lock makes the check and the
count one atomic step across replicas; the same statement writes the request's reservation to
the ledger `key_holds`. Settling is one statement too: it marks the request's ledger row
settled and turns its reservation into its cost, or does nothing if the row was settled
already, so a settlement retried after a lost acknowledgement counts once. (A request admitted
while the store was unreachable has no row: its settlement writes one, settled.) Both run on
this process's own small pool of async connections (`synchronous_commit=off`: a crash of the
server may forget the last few milliseconds of counts, never a request), on the event loop,
each bounded by `timeout_s`. Ledger rows are deleted an hour after they were written.

**Replicas that die.** Every replica heartbeats in `replicas`; one whose heartbeat is older
than `dead_after_s` is removed by any other, and its unsettled reservations become spend (each
at what it reserved: a request it was answering may have been paid for, and a budget must not
overshoot); a settlement arriving later corrects that by what the request cost. An admission
locks its own replica's row (`FOR KEY SHARE`), so a replica is never declared dead halfway
through one; a replica that finds itself declared dead (a long pause) registers again.
An admission whose statement fails without an answer (the connection dropped mid-way) may or
may not have been counted: the request is admitted by the replica's share (below), and its
settlement (or, if refused there, a release of what it may have reserved) puts the ledger
right once the store answers.

**When PostgreSQL is unreachable** (down, restarting, a partition) the limits **fail closed to
each replica's share**: the replica keeps answering, and admits a limited key's requests against
its share of what was left when it last read the key's usage (at each admission, and every
`heartbeat_s` for every key), counted in its memory: `floor(rpm / replicas)` per minute (this
minute: less its share of what was already used) and `(budget - spent - in flight) / replicas`
for the period. Closed, because a budget is money: a store outage must not open a window of
unlimited spend. A share, not nothing, because refusing every limited request while the store
restarts would turn a database blip into an outage for every client. The shares add up to what
was left at the last reading, so the only overshoot possible is what other replicas admitted
after this replica's last reading (at most a heartbeat's worth of that key's traffic); a key
may instead be refused a little early. Settlements wait in memory and are written when the
store is back (probed every `retry_s`); an admission waits at most `timeout_s`, once, for a
store that has gone away, then goes local at once until the probe finds it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg

from tradeoff.evals.store import Store
from tradeoff.router.keys.keyfile import KeySpec, minute_start, period_start, utcnow
from tradeoff.router.keys.limits import (
    Admission,
    Limits,
    MemoryLimits,
    PeriodCounts,
    Refused,
    verdict,
)
from tradeoff.router.keys.usage import publish_keys

__all__ = ["PostgresLimits"]

log = logging.getLogger("tradeoff.router")
KEEP_LEDGER_S = 3600.0  # settled ledger rows are kept this long (a retried settlement finds them)
FORGET_EVERY_S = 60.0
SETTLE_BATCH = 500  # settlements per pipeline (one transaction)
SETTLE_DELAY_S = 0.005  # settlements wait this long to share a round trip with others

ADMIT = """
WITH me AS (
    SELECT replica FROM replicas WHERE replica = %(replica)s FOR KEY SHARE
), admitted AS (
    INSERT INTO key_usage AS u (name, period_start, reserved_nusd, minute_start, minute_requests)
    SELECT %(name)s, date_trunc(%(period)s, localtimestamp), %(reserve)s::bigint,
           date_trunc('minute', localtimestamp), 1
    FROM me
    ON CONFLICT (name, period_start) DO UPDATE SET
        reserved_nusd = u.reserved_nusd + excluded.reserved_nusd,
        minute_requests = CASE WHEN u.minute_start = excluded.minute_start
                          THEN u.minute_requests + 1 ELSE 1 END,
        minute_start = excluded.minute_start
    WHERE (%(rpm)s::integer IS NULL OR u.minute_start IS DISTINCT FROM excluded.minute_start
           OR u.minute_requests < %(rpm)s::integer)
      AND (%(budget)s::bigint IS NULL
           OR u.spent_nusd + u.reserved_nusd + excluded.reserved_nusd <= %(budget)s::bigint)
    RETURNING u.period_start, u.spent_nusd, u.reserved_nusd, u.minute_start, u.minute_requests
), held AS (
    INSERT INTO key_holds (request_id, replica, name, period_start, reserved_nusd, created_at)
    SELECT %(id)s, %(replica)s, %(name)s, period_start, %(reserve)s::bigint, localtimestamp
    FROM admitted
)
SELECT (SELECT count(*) FROM me), a.period_start, a.spent_nusd, a.reserved_nusd,
       a.minute_start, a.minute_requests
FROM (SELECT 1) AS one LEFT JOIN admitted AS a ON true
"""
USAGE = """
SELECT u.spent_nusd, u.reserved_nusd, u.minute_start, u.minute_requests, localtimestamp,
       date_trunc(%(period)s, localtimestamp)
FROM (SELECT 1) AS one LEFT JOIN key_usage AS u
  ON u.name = %(name)s AND u.period_start = date_trunc(%(period)s, localtimestamp)
"""
# Exactly once per request: its ledger row is settled here, or written settled when there is
# none (admitted while the store was away); a row settled already makes this a no-op. A row a
# dead replica's reservation was counted as spent for (reaped) is corrected by the real cost.
# Both land in the period the row holds its reservation in (the admission's own period).
# `count` is 0 for a release (a request refused after an admission that may have counted).
# One upsert, not an UPDATE then an INSERT: ON CONFLICT sees (and waits for) a hold that its
# admission commits while this runs (one whose client timed out), which an UPDATE reading this
# statement's snapshot would miss, leaving the settlement skipped and the reservation held.
SETTLE = """
WITH applied AS (
    INSERT INTO key_holds AS h (request_id, replica, name, period_start, settled, created_at)
    VALUES (%(id)s, %(holder)s, %(name)s, %(start)s, true, localtimestamp)
    ON CONFLICT (request_id) DO UPDATE SET settled = true WHERE NOT h.settled
    RETURNING h.reserved_nusd, h.reaped, h.period_start
)
INSERT INTO key_usage AS u (name, period_start, spent_nusd, reserved_nusd, requests)
SELECT %(name)s, period_start,
       %(cost)s::bigint - CASE WHEN reaped THEN reserved_nusd ELSE 0 END,
       -CASE WHEN reaped THEN 0 ELSE reserved_nusd END, %(count)s::bigint
FROM applied
ON CONFLICT (name, period_start) DO UPDATE SET
    spent_nusd = u.spent_nusd + excluded.spent_nusd,
    reserved_nusd = u.reserved_nusd + excluded.reserved_nusd,
    requests = u.requests + excluded.requests
"""
REGISTER = """
INSERT INTO replicas (replica, host, pid, started_at, seen_at)
VALUES (%(replica)s, %(host)s, %(pid)s, localtimestamp, localtimestamp)
ON CONFLICT (replica) DO UPDATE SET seen_at = excluded.seen_at
"""
HEARTBEAT = """
WITH beat AS (UPDATE replicas SET seen_at = localtimestamp WHERE replica = %(replica)s RETURNING 1)
SELECT (SELECT count(*) FROM beat), count(*) FROM replicas
WHERE seen_at > localtimestamp - %(dead)s * interval '1 second'
"""
FIND_DEAD = """
DELETE FROM replicas WHERE seen_at < localtimestamp - %(dead)s * interval '1 second'
RETURNING replica
"""
# Run after FIND_DEAD in the same transaction, as its own statement: it must see the rows that
# admissions (which waited on the dead rows' locks) committed meanwhile.
RELEASE = """
WITH holds AS (
    UPDATE key_holds SET reaped = true
    WHERE replica = ANY(%(dead)s) AND NOT settled AND NOT reaped
    RETURNING name, period_start, reserved_nusd
), sums AS (
    SELECT name, period_start, sum(reserved_nusd) AS r FROM holds GROUP BY name, period_start
)
UPDATE key_usage AS u SET reserved_nusd = u.reserved_nusd - s.r, spent_nusd = u.spent_nusd + s.r
FROM sums AS s WHERE u.name = s.name AND u.period_start = s.period_start
"""
FORGET = """
DELETE FROM key_holds WHERE created_at < localtimestamp - %(keep)s * interval '1 second'
AND (settled OR reaped)
"""
SNAPSHOT = """
SELECT name, period_start, spent_nusd, reserved_nusd, minute_start, minute_requests
FROM key_usage WHERE name = ANY(%(names)s) ORDER BY period_start
"""


@dataclass
class _Seen:
    """A key's usage at this replica's last contact with the store."""

    period_start: datetime
    spent: int
    reserved: int
    minute: datetime | None = None
    minute_requests: int = 0


class _Pool:
    """A few async connections, opened on first use, each lent to one statement at a time."""

    def __init__(self, url: str, size: int, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            con = self._idle.pop() if self._idle else await self._open()
            try:
                yield con
            finally:
                clean = not (con.closed or con.broken) and (
                    con.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                )
                if clean:
                    self._idle.append(con)
                else:
                    await con.close()

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        wait_ms = max(1, int(self.timeout_s * 1000))
        return await psycopg.AsyncConnection.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(2, math.ceil(self.timeout_s)),
            options=f"-c TimeZone=UTC -c synchronous_commit=off -c lock_timeout={wait_ms}",
            application_name="tradeoff-limits",
        )

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for con in idle:
            await con.close()


class PostgresLimits(Limits):
    """Limits every replica on the store `url` shares (see the module docstring)."""

    def __init__(
        self,
        url: str,
        keys: list[KeySpec],
        *,
        store: Store | None = None,
        timeout_s: float = 1.0,
        heartbeat_s: float = 2.0,
        dead_after_s: float = 30.0,
        retry_s: float = 1.0,
        connections: int = 4,
    ) -> None:
        super().__init__()
        self.url, self.keys = url, {k.name: k for k in keys}
        self.store = store
        self.timeout_s, self.heartbeat_s = timeout_s, heartbeat_s
        self.dead_after_s, self.retry_s = dead_after_s, retry_s
        self.connections = connections
        self.replica = self._new_id()
        self.replicas = 1  # live replicas at the last heartbeat
        self.down_since: float | None = None
        self.degraded_admissions = 0
        self._seen: dict[str, _Seen] = {}
        self._local: MemoryLimits | None = None
        self._pending: deque[tuple[Admission, int, int]] = deque()  # (admission, cost, count)
        self._forgot_at = 0.0
        self._flushing: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: _Pool | None = None

    @staticmethod
    def _new_id() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def pending(self) -> int:
        """Settlements waiting for the store."""
        return len(self._pending)

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._pool = _Pool(self.url, self.connections, self.timeout_s)
        self._wake = asyncio.Event()
        if self.store is not None:
            await asyncio.to_thread(publish_keys, self.store, list(self.keys.values()))
        async with self._pool.connection() as con:
            await self._register(con)
            await self._snapshot(con)
        self._tasks = [
            asyncio.ensure_future(self._settle_forever()),
            asyncio.ensure_future(self._keep_forever()),
        ]

    async def stop(self, timeout_s: float = 5.0) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            if not await self._flush():
                await asyncio.sleep(min(self.retry_s, max(0.0, deadline - time.monotonic())))
        if self._pending:
            log.warning(
                "limits: %d settlements could not reach the store; their reservations count as "
                "spent once this replica's heartbeat expires",
                len(self._pending),
            )
        else:
            with contextlib.suppress(psycopg.Error, OSError, TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    await self._release([self.replica])
        if self._pool is not None:
            await self._pool.close()

    # -- admitting and settling --------------------------------------------------------------
    async def admit(self, key: KeySpec, reserve_nusd: int, request_id: str = "") -> Admission:
        request_id = request_id or uuid.uuid4().hex
        budget = key.budget_nusd
        if budget is not None and reserve_nusd > budget:  # never fits: no need to ask
            now = utcnow()
            refused = verdict(
                key, PeriodCounts(), reserve_nusd, now, period_start(key.budget_period, now)
            )
            assert refused is not None
            raise refused
        if self.down_since is None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self._admit_shared(key, reserve_nusd, request_id)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._went_down(exc)
                # The statement may have counted it before the answer was lost: once the store
                # answers again, this request's settlement (or release) puts that right.
                return self._admit_local(key, reserve_nusd, request_id, maybe_counted=True)
        return self._admit_local(key, reserve_nusd, request_id)

    async def _admit_shared(self, key: KeySpec, reserve: int, request_id: str) -> Admission:
        assert self._pool is not None
        params = {
            "id": request_id,
            "replica": self.replica,
            "name": key.name,
            "period": key.budget_period,
            "reserve": reserve,
            "rpm": key.rpm,
            "budget": key.budget_nusd,
        }
        async with self._pool.connection() as con:
            for _ in range(3):
                cur = await con.execute(ADMIT, params)
                found = await cur.fetchone()
                assert found is not None  # one row, always (a LEFT JOIN on a constant)
                mine, start, spent, reserved, minute, count = found
                if not mine:  # declared dead meanwhile (a long pause): rejoin under a new id
                    self.replica = params["replica"] = self._new_id()
                    await self._register(con)
                    continue
                if start is not None:
                    self._seen[key.name] = _Seen(start, int(spent), int(reserved), minute, count)
                    return Admission(key, start, reserve, self.replica, request_id=request_id)
                cur = await con.execute(USAGE, params)
                row = await cur.fetchone()
                assert row is not None
                spent, reserved, minute, count, now, start = row
                usage = PeriodCounts(int(spent or 0), int(reserved or 0), minute, int(count or 0))
                self._seen[key.name] = _Seen(
                    start, usage.spent, usage.reserved, minute, usage.minute_requests
                )
                refused = verdict(key, usage, reserve, now, start)
                if refused is not None:
                    raise refused
        raise TimeoutError("the usage row kept changing")  # unreachable in practice: go local

    def _admit_local(
        self, key: KeySpec, reserve: int, request_id: str, *, maybe_counted: bool = False
    ) -> Admission:
        if self._local is None:
            self._local = self._shares()
        shared = self._local.keys[key.name]
        now = utcnow()
        try:
            admitted = self._local.admit_now(shared, reserve, now)
        except Refused as refused:
            if maybe_counted:  # release whatever the lost statement may have reserved
                start = period_start(key.budget_period, now)
                self._queue(Admission(key, start, 0, self.replica, True, request_id), 0, 0)
            what = "requests this minute" if refused.limit == "rpm" else "budget"
            raise Refused(
                key,
                refused.limit,
                min(refused.retry_after_s, 60),
                f"key {key.name!r} has used this replica's share of its {what} while the shared "
                f"store is unreachable (1/{max(1, self.replicas)} of what was left); retry shortly",
            ) from None
        self.degraded_admissions += 1
        return replace(admitted, key=key, holder=self.replica, local=True, request_id=request_id)

    def _shares(self) -> MemoryLimits:
        """Each key's share of what was left at the last contact (the module docstring)."""
        now, live = utcnow(), max(1, self.replicas)
        shares, used_minute = [], {}
        for key in self.keys.values():
            seen = self._seen.get(key.name)
            current = seen is not None and seen.period_start == period_start(key.budget_period, now)
            budget = None
            if key.budget_nusd is not None:
                used = seen.spent + seen.reserved if seen is not None and current else 0
                budget = max(0, key.budget_nusd - used) // live / 1e9
            rpm = None if key.rpm is None else key.rpm // live
            if (
                rpm is not None
                and seen is not None
                and current
                and seen.minute == minute_start(now)
            ):
                used_minute[key.name] = -(-seen.minute_requests // live)  # this minute's share
            shares.append(replace(key, rpm=rpm, budget_usd=budget))
        local = MemoryLimits(shares)
        for key in shares:
            if key.name in used_minute:
                local.seed(key, 0, used_minute[key.name], now)
        return local

    def settle(self, admission: Admission, cost_nusd: int) -> None:
        if admission.local and self._local is not None:
            self._local.settle(admission, cost_nusd)
        self._queue(admission, cost_nusd, 1)

    def _queue(self, admission: Admission, cost_nusd: int, count: int) -> None:
        self._pending.append((admission, cost_nusd, count))
        if self._wake is not None:
            self._wake.set()

    async def _settle_forever(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            await asyncio.sleep(SETTLE_DELAY_S)  # let a few gather: one round trip for all
            self._wake.clear()
            if self.down_since is None and not await self._flush():
                self._went_down(None)

    async def _flush(self) -> bool:
        """Write pending settlements, a pipeline per `SETTLE_BATCH`; False (the rest kept) if
        the store failed."""
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        async with self._flushing:  # one writer: a batch is popped by whoever wrote it
            while self._pending:
                if not await self._flush_once():
                    return False
            return True

    async def _flush_once(self) -> bool:
        assert self._pool is not None
        # Bounded, so that after an outage the key rows' locks are taken a batch at a time and
        # admissions interleave with the backlog rather than wait it out.
        batch = list(itertools.islice(self._pending, SETTLE_BATCH))
        if not batch:
            return True
        try:
            async with (
                asyncio.timeout(self.timeout_s + 0.02 * len(batch)),
                self._pool.connection() as con,
            ):
                if len(batch) == 1:
                    await con.execute(SETTLE, self._settle_params(*batch[0]))
                else:
                    async with con.pipeline():
                        for item in batch:
                            await con.execute(SETTLE, self._settle_params(*item))
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.debug("limits: settling %d requests failed (%s)", len(batch), exc)
            return False
        for _ in batch:
            self._pending.popleft()
        return True

    @staticmethod
    def _settle_params(admission: Admission, cost: int, count: int) -> dict[str, Any]:
        return {
            "id": admission.request_id,
            "holder": admission.holder,
            "name": admission.key.name,
            "start": admission.period_start,
            "cost": cost,
            "count": count,
        }

    # -- heartbeats, the dead, and coming back -----------------------------------------------
    def _went_down(self, exc: BaseException | None) -> None:
        if self.down_since is not None:
            return
        self.down_since = time.monotonic()
        self._local = self._shares()
        log.error(
            "limits: the store is unreachable (%s); each key keeps to this replica's share "
            "(1/%d of what was left) until it is back",
            exc or "a settlement failed",
            max(1, self.replicas),
        )

    async def _keep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retry_s if self.down_since is not None else self.heartbeat_s)
            try:
                async with asyncio.timeout(self.timeout_s * 2):
                    await self._keep()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._went_down(exc)
                continue
            if self.down_since is not None and await self._flush():
                log.info(
                    "limits: the store is back after %.0fs; %d requests were admitted by "
                    "this replica's share meanwhile",
                    time.monotonic() - self.down_since,
                    self.degraded_admissions,
                )
                self.down_since, self._local = None, None
                # Settlements queued while that flush ran woke the settler, which skipped them
                # (the store was still down): without this they would wait for the next request.
                if self._pending and self._wake is not None:
                    self._wake.set()

    async def _keep(self) -> None:
        """Heartbeat (rejoining if declared dead), count the live replicas, release the dead."""
        assert self._pool is not None
        async with self._pool.connection() as con:
            cur = await con.execute(HEARTBEAT, {"replica": self.replica, "dead": self.dead_after_s})
            mine, live = await cur.fetchone() or (0, 1)
            if not mine:
                self.replica = self._new_id()
                await self._register(con)
                live += 1
            self.replicas = max(1, int(live))
            await self._snapshot(con)
            async with con.transaction():
                cur = await con.execute(FIND_DEAD, {"dead": self.dead_after_s})
                dead = [row[0] for row in await cur.fetchall()]
                if dead:
                    await con.execute(RELEASE, {"dead": dead})
            if time.monotonic() - self._forgot_at > FORGET_EVERY_S:
                self._forgot_at = time.monotonic()
                await con.execute(FORGET, {"keep": KEEP_LEDGER_S})
        if dead:
            log.warning(
                "limits: replicas %s stopped heartbeating; their holds count as spent", dead
            )

    async def _snapshot(self, con: psycopg.AsyncConnection[Any]) -> None:
        """Every key's current usage: what the shares are cut from if the store goes away."""
        cur = await con.execute(SNAPSHOT, {"names": list(self.keys)})
        for name, start, spent, reserved, minute, count in await cur.fetchall():
            self._seen[name] = _Seen(start, int(spent), int(reserved), minute, int(count))

    async def _register(self, con: psycopg.AsyncConnection[Any]) -> None:
        await con.execute(
            REGISTER, {"replica": self.replica, "host": socket.gethostname(), "pid": os.getpid()}
        )

    async def _release(self, replicas: list[str]) -> None:
        assert self._pool is not None
        async with self._pool.connection() as con, con.transaction():
            await con.execute(
                "DELETE FROM replicas WHERE replica = ANY(%(dead)s)", {"dead": replicas}
            )
            await con.execute(RELEASE, {"dead": replicas})
