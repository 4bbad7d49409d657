"""The request log's writer: exactly once, never blocking, never blocked by one row, and
bounded at shutdown (what the store cannot take stays in the spool for the next start)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tradeoff.evals.store import Store, open_store
from tradeoff.router.log.request_log import COLUMNS, SCHEMA, RequestLog, RequestRow
from tradeoff.router.log.spool import spool_dir


def row(i: int, **changes: object) -> RequestRow:
    base = RequestRow(
        request_id=f"req-{i}", created_at=datetime(2026, 1, 1), policy="p",
        requested_model="p", model="m", task=None, stream=False, attempts=1, fallbacks=0,
        status=200, error=None, prompt_tokens=3, completion_tokens=4, cost_usd=1e-5,
        baseline_cost_usd=2e-5, latency_ms=12.5, ttft_ms=None, prompt=None,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def count(store: Store) -> tuple[int, int]:
    with store.connect(read_only=True) as con:
        result = con.execute("SELECT count(*), count(DISTINCT request_id) FROM requests")
        total, distinct = result.fetchone()  # type: ignore[misc]
    return total, distinct


def open_log(tmp_path: Path, store: Store | None = None, **options: object) -> RequestLog:
    store = store or open_store(tmp_path / "db.duckdb")
    store.timeout_s = 0.2
    return RequestLog(store, spool_dir(tmp_path / "db.duckdb"), flush_s=0.02, **options)  # type: ignore[arg-type]


def test_arrow_schema_matches_the_requests_table(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db.duckdb")
    with store.connect() as con:
        columns = [r[0] for r in con.execute("DESCRIBE requests").fetchall()]
    assert columns == COLUMNS == SCHEMA.names


def test_rows_written_once_even_when_replayed(tmp_path: Path) -> None:
    log = open_log(tmp_path).start()
    for i in range(1200):  # more than one batch
        log.record(row(i))
    assert log.wait_written(30)
    log.close()
    assert count(log.store) == (1200, 1200)
    with log.store.connect(read_only=True) as con:
        first = con.execute("SELECT * FROM requests WHERE request_id = 'req-0'").fetchone()
    assert first == tuple(getattr(row(0), c) for c in COLUMNS)
    # the same rows again (a spool replayed after a crash that followed the commit): skipped
    again = open_log(tmp_path, log.store).start()
    for i in range(1195, 1205):
        again.record(row(i))
    again.close()
    assert count(log.store) == (1205, 1205)


def test_any_string_a_client_sends_is_loggable(tmp_path: Path) -> None:
    log = open_log(tmp_path).start()
    nasty = ["\ud800", "a\udfffb", "nul\x00byte", "\u2028", "\x1b[31m"]
    for i, text in enumerate(nasty):
        log.record(row(i, requested_model=text, task=text, error=text, prompt=text))
    log.record(row(99, prompt_tokens=10**30, cost_usd=float("nan")))  # an upstream's nonsense
    log.close()
    assert count(log.store) == (6, 6)
    assert log.dead_letters.rows == 0
    with log.store.connect(read_only=True) as con:
        tasks = [
            r[0] for r in con.execute("SELECT task FROM requests ORDER BY request_id").fetchall()
        ]
        odd = con.execute(
            "SELECT prompt_tokens, cost_usd FROM requests WHERE request_id = 'req-99'"
        )
        assert odd.fetchone() == (None, None)
    assert tasks[:5] == ["\\ud800", "a\\udfffb", "nul\\u0000byte", "\u2028", "\x1b[31m"]


def strict_store(path: Path) -> Store:
    """A real store whose `requests` table also refuses task = 'refused' (a CHECK constraint):
    a row that is valid for us and that the store still will not take."""
    store = open_store(path)
    with store.transaction() as con:
        (ddl,) = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE table_name = 'requests'"
        ).fetchone()  # type: ignore[misc]
        con.execute("DROP TABLE requests")
        body = ddl.rstrip().removesuffix(";").removesuffix(")")
        con.execute(body + ", CHECK (task <> 'refused'))")
    return store


def test_a_row_the_store_refuses_is_set_aside_and_blocks_nothing(tmp_path: Path) -> None:
    log = open_log(tmp_path, strict_store(tmp_path / "db.duckdb"), batch_rows=1000).start()
    for i in range(50):
        log.record(row(i))
    log.record(row(50, task="refused"))
    for i in range(51, 351):
        log.record(row(i))
    assert log.wait_written(30)
    assert log.pending == 0
    assert count(log.store) == (350, 350)
    assert log.dead_letters.rows == 1
    (line,) = log.dead_letters.path.read_text().splitlines()
    record = json.loads(line)
    assert record["row"]["request_id"] == "req-50" and "CHECK" in record["error"]
    log.close()
    assert [p.name for p in log.folder.iterdir()] == ["dead-letter.jsonl"]  # spool settled


def test_a_lone_refused_row_is_set_aside_after_a_few_tries(tmp_path: Path) -> None:
    log = open_log(tmp_path, strict_store(tmp_path / "db.duckdb")).start()
    log.record(row(1, task="refused"))
    assert log.wait_written(30)
    assert (log.pending, log.dead_letters.rows, count(log.store)) == (0, 1, (0, 0))
    log.close()


HOLD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def test_a_locked_store_never_blocks_record_and_close_is_bounded(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    store = open_store(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        log = open_log(tmp_path, store, drain_s=0.5).start()
        started = time.perf_counter()
        for i in range(500):
            log.record(row(i))
        assert time.perf_counter() - started < 0.5  # spooled, not written
        time.sleep(0.3)
        assert (log.written, log.pending) == (0, 500)  # truthful while the store is locked
        started = time.perf_counter()
        log.close()
        assert time.perf_counter() - started < 0.5 + 0.2 + 1.5
        assert sum(len(p.read_bytes().splitlines()) for p in log.folder.glob("segment-*")) == 500
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    # the next start on the same store finds the spool and writes every row, once
    again = open_log(tmp_path, store).start()
    assert again.wait_written(30)
    again.close()
    assert count(store) == (500, 500)
    assert not list(again.folder.glob("segment-*"))


def test_close_waits_for_a_store_released_within_the_drain_time(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    store = open_store(db)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('held', flush=True); time.sleep(1.0)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    log = open_log(tmp_path, store, drain_s=10.0).start()
    for i in range(100):
        log.record(row(i))
    log.close()  # drains once the other process lets go
    holder.wait(timeout=10)
    assert count(store) == (100, 100)
