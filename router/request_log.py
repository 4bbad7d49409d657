"""The request log: every proxied request, exactly once, in the store's `requests` table.

The request path only appends a row to a queue (never blocks, never touches DuckDB). A writer
thread drains the queue in batches, every `flush_s` or `batch_rows` rows, each batch in one short
store transaction, so the CLI and the dashboard can open the file between flushes. `close()`
drains everything left (the app's shutdown calls it on SIGTERM/SIGINT). A batch whose write
fails is kept and retried; `request_id` is the primary key and inserts skip ids already present,
so a retried batch never duplicates a row.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, astuple, dataclass, fields
from datetime import datetime

import pyarrow as pa

from evals.store import Store

log = logging.getLogger("tradeoff.router")


@dataclass(frozen=True)
class RequestRow:
    """One row of `requests` (columns in the table's order)."""

    request_id: str
    created_at: datetime
    policy: str | None
    requested_model: str
    model: str | None
    task: str | None
    stream: bool
    attempts: int
    fallbacks: int
    status: int
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    baseline_cost_usd: float | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt: str | None


COLUMNS = [f.name for f in fields(RequestRow)]
# One Arrow batch per flush: DuckDB's executemany costs ~3 ms a row, holding the GIL (and so
# stalling the event loop); an Arrow scan inserts hundreds of rows in one statement.
INSERT = (
    f"INSERT INTO requests ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM request_batch "
    "ON CONFLICT (request_id) DO NOTHING"
)
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("policy", pa.string()),
        ("requested_model", pa.string()),
        ("model", pa.string()),
        ("task", pa.string()),
        ("stream", pa.bool_()),
        ("attempts", pa.int32()),
        ("fallbacks", pa.int32()),
        ("status", pa.int32()),
        ("error", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("baseline_cost_usd", pa.float64()),
        ("latency_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("prompt", pa.string()),
    ]
)
_STOP = object()
RECENT = 10_000  # rows `find` answers from memory (the ones the store may not have yet)


class RequestLog:
    """A batched background writer of `RequestRow`s into one store."""

    def __init__(self, store: Store, *, flush_s: float = 0.25, batch_rows: int = 500) -> None:
        self.store = store
        self.flush_s = flush_s
        self.batch_rows = batch_rows
        self.recorded = 0
        self.written = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tradeoff-request-log", daemon=True)
        self._started = False
        self._recent: OrderedDict[str, RequestRow] = OrderedDict()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> RequestLog:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def record(self, row: RequestRow) -> None:
        """Queue one row; returns at once."""
        self.recorded += 1
        self._recent[row.request_id] = row
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        self._queue.put(row)

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
        """Block until every row recorded so far is in the store (for tests and tools)."""
        target = self.recorded
        deadline = time.monotonic() + timeout_s
        while self.written < target:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write every queued row, then stop the thread."""
        if not self._started:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("request log: %d rows still unwritten after %.0fs", self.pending, timeout_s)

    def _run(self) -> None:
        batch: list[RequestRow] = []
        stopping = False
        while not stopping:
            deadline = time.monotonic() + self.flush_s
            while len(batch) < self.batch_rows:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, RequestRow)
                batch.append(item)
            if batch and self._write(batch, final=stopping):
                batch = []

    @staticmethod
    def _arrow(batch: list[RequestRow]) -> pa.Table:
        columns = zip(*(astuple(row) for row in batch), strict=True)
        arrays = [pa.array(values, type=f.type) for values, f in zip(columns, SCHEMA, strict=True)]
        return pa.Table.from_arrays(arrays, schema=SCHEMA)

    def _write(self, batch: list[RequestRow], *, final: bool) -> bool:
        attempts = 5 if final else 1
        for i in range(attempts):
            try:
                table = self._arrow(batch)
                with self.store.transaction() as con:
                    con.register("request_batch", table)
                    con.execute(INSERT)
                    con.unregister("request_batch")
            except Exception as exc:  # a full disk, a lock held too long: keep the rows, retry
                log.error("request log: writing %d rows failed (%s); will retry", len(batch), exc)
                time.sleep(min(1.0, 0.1 * 2**i))
                continue
            self.written += len(batch)
            return True
        if final:
            log.error(
                "request log: %d rows could not be written to %s", len(batch), self.store.path
            )
        return False
