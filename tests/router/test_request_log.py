"""The batched writer: exactly once, never blocking, surviving a store held by another process."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from evals.store import Store, open_store
from router.request_log import COLUMNS, SCHEMA, RequestLog, RequestRow


def row(i: int) -> RequestRow:
    return RequestRow(
        request_id=f"req-{i}", created_at=datetime(2026, 1, 1), policy="p",
        requested_model="p", model="m", task=None, stream=False, attempts=1, fallbacks=0,
        status=200, error=None, prompt_tokens=3, completion_tokens=4, cost_usd=1e-5,
        baseline_cost_usd=2e-5, latency_ms=12.5, ttft_ms=None, prompt=None,
    )  # fmt: skip


def count(store: Store) -> tuple[int, int]:
    with store.connect(read_only=True) as con:
        result = con.execute("SELECT count(*), count(DISTINCT request_id) FROM requests")
        total, distinct = result.fetchone()  # type: ignore[misc]
    return total, distinct


def test_arrow_schema_matches_the_requests_table(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db.duckdb")
    with store.connect() as con:
        columns = [r[0] for r in con.execute("DESCRIBE requests").fetchall()]
    assert columns == COLUMNS == SCHEMA.names


def test_rows_written_once_even_when_a_batch_is_retried(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db.duckdb")
    log = RequestLog(store, flush_s=0.02).start()
    for i in range(1200):  # more than one batch
        log.record(row(i))
    assert log.wait_written(30)
    # a batch whose commit succeeded but was reported failed gets written again: no duplicate
    assert log._write([row(5), row(1500)], final=False)
    log.close()
    assert count(store) == (1201, 1201)
    with store.connect(read_only=True) as con:
        first = con.execute("SELECT * FROM requests WHERE request_id = 'req-0'").fetchone()
    assert first == tuple(row(0).__dict__.values())


def test_record_never_waits_for_a_locked_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(1.5)", str(tmp_path / "db.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    log = RequestLog(store, flush_s=0.02).start()
    started = time.perf_counter()
    for i in range(500):
        log.record(row(i))
    assert time.perf_counter() - started < 0.5  # queued, not written
    assert log.written == 0
    holder.wait()
    log.close()  # drains once the other process lets go
    assert count(store) == (500, 500)
