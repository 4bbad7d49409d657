"""The request log: every proxied request, exactly once, in the store's `requests` table.

A request routed to a human reviewer carries its review (`RequestRow.review`): its `reviews`
row is inserted in the same transaction as its request row, so the review queue has the same
guarantees as the log (spooled before the answer completes, replayed, never duplicated).

This module is the table's owner in the router: the writer below, `RequestLog.find` and
`key_counts` (a client key's spend and counts) are the router's SQL on it.

`record(row)` is the whole contract for callers: when it returns, the row is durable (on disk in
this process's spool, `router.log.spool`) and queued; it never touches the store and never blocks on
it. A writer thread drains the queue in batches, every `flush_s` or `batch_rows` rows, each batch
in one short store transaction (`INSERT ... ON CONFLICT (request_id) DO NOTHING`, so a batch
written twice, or a spool replayed after a crash, never duplicates a row), and settles the rows
in the spool, which deletes what is safely in the store.

A store it cannot reach (locked by another process, down) is waited for; the rows stay in the
spool meanwhile. A batch the store refuses is bisected: the rows it takes are written, and a row
it refuses on its own while taking its neighbours is set aside in the dead-letter file, so no row
can block the others. `close()` drains what it can within `drain_s`; whatever the store could not
take by then stays in the spool and is replayed at the next start (`start()` claims the spool
files no live process holds).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from tradeoff.evals.errors import StoreError
from tradeoff.evals.store import Store
from tradeoff.router.log.dead_letter import DeadLetters
from tradeoff.router.log.row import (
    COLUMNS,
    REVIEW_SCHEMA,
    SCHEMA,
    RequestRow,
    from_line,
    loggable,
    review_arrow,
    to_arrow,
    to_line,
)
from tradeoff.router.log.spool import Segment, Spool

__all__ = ["COLUMNS", "SCHEMA", "RequestLog", "RequestRow", "key_counts"]

log = logging.getLogger("tradeoff.router")
# One Arrow batch per flush: DuckDB's executemany costs ~3 ms a row, holding the GIL (and so
# stalling the event loop); an Arrow scan inserts hundreds of rows in one statement.
INSERT = (
    f"INSERT INTO requests ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM request_batch "
    "ON CONFLICT (request_id) DO NOTHING"
)
# A request routed to a reviewer enters the review queue in its row's transaction.
_REVIEW_COLUMNS = ", ".join(REVIEW_SCHEMA.names)
INSERT_REVIEWS = (
    f"INSERT INTO reviews ({_REVIEW_COLUMNS}) SELECT {_REVIEW_COLUMNS} FROM review_batch "
    "ON CONFLICT (review_id) DO NOTHING"
)
STRIKES = 3  # a row refused alone this many times, with nothing else to write, is set aside
_STOP = object()
RECENT = 10_000  # rows `find` answers from memory (the ones the store may not have yet)


@dataclass(eq=False)
class _Entry:
    row: RequestRow | None  # None: a spool line that does not hold a row
    segment: Segment | None  # where it is spooled (None: not on disk)
    raw: bytes | None = None  # the spool line, for replayed rows
    strikes: int = 0
    done: bool = False

    @property
    def line(self) -> bytes:
        if self.raw is None:
            assert self.row is not None
            self.raw = to_line(self.row)
        return self.raw


class RequestLog:
    """A durable, batched background writer of `RequestRow`s into one store.

    `folder` holds the spool files and the dead-letter file (`spool_dir(db)` in the proxy).
    `spool=False` keeps rows in memory only until written (what the proxy did before the spool;
    kept for the benchmark that measures the spool's cost). `store` should wait only briefly for
    a lock (its `timeout_s`): the writer retries itself, and must notice `close()`'s deadline.
    """

    def __init__(
        self,
        store: Store,
        folder: Path,
        *,
        spool: bool = True,
        flush_s: float = 0.25,
        batch_rows: int = 500,
        drain_s: float = 5.0,
    ) -> None:
        self.store = store
        self.folder = folder
        self.spool = Spool(folder) if spool else None
        self.dead_letters = DeadLetters(folder / "dead-letter.jsonl")
        self.flush_s = flush_s
        self.batch_rows = batch_rows
        self.drain_s = drain_s
        self.recorded = 0  # rows taken in: recorded here, or replayed from an old spool
        self.written = 0
        self.set_aside = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tradeoff-request-log", daemon=True)
        self._started = False
        self._stop_by = float("inf")
        self._store_down_since: float | None = None
        self._spool_error_at = float("-inf")
        self._recent: OrderedDict[str, RequestRow] = OrderedDict()

    @property
    def pending(self) -> int:
        """Rows taken in and not yet in the store nor set aside."""
        return self.recorded - self.written - self.set_aside

    def start(self) -> RequestLog:
        """Queue the rows of spool files no live process holds, then start the writer."""
        if self._started:
            return self
        self._started = True
        if self.spool is not None:
            orphans = self.spool.claim_orphans()
            for segment, lines in orphans:
                for line in lines:
                    try:
                        row: RequestRow | None = loggable(from_line(line))
                    except ValueError:
                        row = None
                    self.recorded += 1
                    self._queue.put(_Entry(row, segment, raw=line))
            if orphans:
                rows = sum(len(lines) for _, lines in orphans)
                log.info(
                    "request log: replaying %d rows left in %d spool files in %s",
                    rows,
                    len(orphans),
                    self.folder,
                )
        if self.dead_letters.rows:
            log.warning(
                "request log: %d rows the store refused are set aside in %s",
                self.dead_letters.rows,
                self.dead_letters.path,
            )
        self._thread.start()
        return self

    def record(self, row: RequestRow) -> None:
        """Make one row durable (spooled) and queue it; never waits for the store."""
        row = loggable(row)
        entry = _Entry(row, None)
        if self.spool is not None:
            try:
                entry.segment = self.spool.append(entry.line)
            except OSError as exc:  # a full disk must not fail the request: keep it in memory
                now = time.monotonic()
                if now - self._spool_error_at > 60:
                    self._spool_error_at = now
                    log.error("request log: cannot write the spool in %s (%s)", self.folder, exc)
        self.recorded += 1
        self._recent[row.request_id] = row
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        self._queue.put(entry)

    def find(self, request_id: str) -> dict[str, object] | None:
        """The logged request with this id (recent ones from memory, older from the store), as
        a dict of `requests` columns, or None. Blocking: call it off the event loop."""
        row = self._recent.get(request_id)
        if row is not None:
            return asdict(row)
        with self.store.connect() as con:
            cur = con.execute("SELECT * FROM requests WHERE request_id = ?", [request_id])
            found = cur.fetchone()
            names = [d[0] for d in cur.description]
        return None if found is None else dict(zip(names, found, strict=True))

    def wait_written(self, timeout_s: float = 10.0) -> bool:
        """Block until every row taken in so far is in the store or set aside (tests, tools)."""
        target = self.recorded
        deadline = time.monotonic() + timeout_s
        while self.written + self.set_aside < target:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float | None = None) -> None:
        """Write what the store takes within `timeout_s` (default `drain_s`), then stop; rows
        it could not take stay in the spool for the next start."""
        if not self._started:
            return
        wait = self.drain_s if timeout_s is None else timeout_s
        self._stop_by = time.monotonic() + wait
        self._queue.put(_STOP)
        # The writer checks the deadline between tries; one try waits at most the store's
        # timeout_s for a lock.
        self._thread.join(wait + self.store.timeout_s + 1.0)
        left = self.pending
        on_disk = self.spool.close() if self.spool is not None else 0
        if on_disk:
            log.warning(
                "request log: %d rows are not in the store %s yet; they stay in the spool %s "
                "and are written at the next start",
                on_disk,
                self.store,
                self.folder,
            )
        if left > on_disk:  # rows the spool could not take either (a full disk, --no-spool)
            log.error("request log: %d rows could not be written to %s", left - on_disk, self.store)

    # -- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        held: list[_Entry] = []
        stopping = False
        pause = 0.0
        while True:
            stopping = self._collect(held, pause) or stopping
            if held:
                held = self._write(held)
            if not held:
                pause = 0.0
                if stopping:
                    return
                continue
            pause = min(max(0.1, pause * 2), 2.0)  # the store is busy or refusing: back off
            if stopping:
                left = self._stop_by - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(pause, left))

    def _collect(self, held: list[_Entry], pause: float) -> bool:
        """Move queued rows into `held`: until a batch is full or `flush_s` passed (while
        backing off, for the whole pause). True once `close()` asked to stop."""
        deadline = time.monotonic() + max(self.flush_s, pause)
        while pause or len(held) < self.batch_rows:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if item is _STOP:
                while True:  # take whatever was queued before the stop
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        return True
                    if isinstance(item, _Entry):
                        held.append(item)
            assert isinstance(item, _Entry)
            held.append(item)
        return False

    def _write(self, held: list[_Entry]) -> list[_Entry]:
        """Write `held`; return the entries to try again later."""
        for entry in held:
            if entry.row is None:
                self._set_aside(entry, "the spool line is not a request row")
        todo = [e for e in held if not e.done]
        try:
            refused = self._insert(todo)
        except StoreError as exc:  # the store cannot be reached: not the rows' fault
            if self._store_down_since is None:
                self._store_down_since = time.monotonic()
                log.error(
                    "request log: %s; %d rows wait in the spool %s", exc, self.pending, self.folder
                )
            return [e for e in todo if not e.done]
        if self._store_down_since is not None:
            log.info(
                "request log: the store is back after %.0fs",
                time.monotonic() - self._store_down_since,
            )
            self._store_down_since = None
        if not refused:
            return []
        if len(refused) < len(todo) or (len(refused) == 1 and refused[0][0].strikes >= STRIKES - 1):
            # The store took the other rows (or one row alone failed again and again): it is
            # these rows the store refuses.
            for entry, error in refused:
                self._set_aside(entry, error)
            return [e for e, _ in refused if not e.done]
        # The store refused every row: more likely the store than the rows. Try again later.
        for entry, _ in refused:
            entry.strikes += 1
        log.error(
            "request log: the store refused %d rows (%s); will retry", len(refused), refused[0][1]
        )
        return [e for e, _ in refused]

    def _insert(self, entries: list[_Entry]) -> list[tuple[_Entry, str]]:
        """Insert `entries`, bisecting a batch the store refuses; return the refused rows."""
        if not entries:
            return []
        try:
            rows = [e.row for e in entries if e.row is not None]
            table, reviews = to_arrow(rows), review_arrow(rows)
            with self.store.transaction() as con:
                con.register("request_batch", table)
                con.execute(INSERT)
                con.unregister("request_batch")
                if reviews is not None:
                    con.register("review_batch", reviews)
                    con.execute(INSERT_REVIEWS)
                    con.unregister("review_batch")
        except StoreError:
            raise
        except Exception as exc:  # the store (or Arrow) refused something in this batch
            if len(entries) == 1:
                return [(entries[0], f"{type(exc).__name__}: {exc}")]
            middle = len(entries) // 2
            return self._insert(entries[:middle]) + self._insert(entries[middle:])
        self.written += len(entries)
        self._settle(*entries)
        return []

    def _set_aside(self, entry: _Entry, error: str) -> None:
        try:
            self.dead_letters.add(entry.line, error)
        except OSError as exc:  # keep it (in the spool too) rather than lose it
            log.error("request log: cannot write %s (%s)", self.dead_letters.path, exc)
            return
        self.set_aside += 1
        self._settle(entry)

    def _settle(self, *entries: _Entry) -> None:
        per_segment: Counter[Segment] = Counter()
        for entry in entries:
            entry.done = True
            if entry.segment is not None:
                per_segment[entry.segment] += 1
        if self.spool is not None:
            for segment, rows in per_segment.items():
                self.spool.settle(segment, rows)


def key_counts(
    store: Store, key_name: str, since: datetime, minute: datetime
) -> tuple[float, int, int, int]:
    """Of the requests logged under client key `key_name` since `since`: (their cost in USD,
    how many, how many its limits refused (429, no upstream tried), how many reached an upstream
    since `minute`)."""
    with store.connect(read_only=True, threads=1) as con:
        row = con.execute(
            "SELECT coalesce(sum(cost_usd), 0), count(*), "
            "coalesce(sum(CASE WHEN status = 429 AND attempts = 0 THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN created_at >= ? AND attempts > 0 THEN 1 ELSE 0 END), 0) "
            "FROM requests WHERE key_name = ? AND created_at >= ?",
            [minute, key_name, since],
        ).fetchone()
    assert row is not None
    return float(row[0]), int(row[1]), int(row[2]), int(row[3])
