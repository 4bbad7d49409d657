"""The store contract, one suite run against both backends (a DuckDB file, a PostgreSQL database):
the exact schema, recorded migrations, transactions, read-only connections, placeholders, Arrow
and DataFrame bulk inserts, shared counters and locks, with real concurrent processes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import pyarrow as pa
import pytest

from tradeoff.evals.errors import StoreBusyError, StoreError, StoreNotFoundError, UsageError
from tradeoff.evals.migrations import MIGRATIONS
from tradeoff.evals.store import Store, default_db, open_store, resolve_db
from tradeoff.evals.store.postgres import redact

REPO = Path(__file__).resolve().parents[2]
NAMES = [name for name, _ in MIGRATIONS]
DB_ERRORS = (duckdb.Error, psycopg.Error)

# The schema every migration together produces, in DuckDB's spelling (PostgreSQL's is mapped to
# it below). Appending a migration? Update this to match: it is the reviewable record of what the
# store looks like.
EXPECTED_SCHEMA = {
    "api_keys": [
        "name VARCHAR NOT NULL",
        "rpm INTEGER",
        "budget_usd DOUBLE",
        "budget_period VARCHAR NOT NULL",
        "updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "key_holds": [
        "request_id VARCHAR NOT NULL",
        "replica VARCHAR NOT NULL",
        "name VARCHAR NOT NULL",
        "period_start TIMESTAMP NOT NULL",
        "reserved_nusd BIGINT NOT NULL DEFAULT 0",
        "settled BOOLEAN NOT NULL DEFAULT false",
        "reaped BOOLEAN NOT NULL DEFAULT false",
        "created_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "key_usage": [
        "name VARCHAR NOT NULL",
        "period_start TIMESTAMP NOT NULL",
        "spent_nusd BIGINT NOT NULL DEFAULT 0",
        "reserved_nusd BIGINT NOT NULL DEFAULT 0",
        "requests BIGINT NOT NULL DEFAULT 0",
        "minute_start TIMESTAMP",
        "minute_requests INTEGER NOT NULL DEFAULT 0",
    ],
    "replicas": [
        "replica VARCHAR NOT NULL",
        "host VARCHAR",
        "pid INTEGER",
        "started_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
        "seen_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "counters": [
        "scope VARCHAR NOT NULL",
        "key VARCHAR NOT NULL",
        "value DOUBLE NOT NULL DEFAULT 0",
        "updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "adaptive_drops": [
        "dataset VARCHAR NOT NULL",
        "model VARCHAR NOT NULL",
        "params_hash VARCHAR NOT NULL",
        "after_items INTEGER NOT NULL",
        "reason VARCHAR NOT NULL",
        "requirement VARCHAR NOT NULL",
        "run_id VARCHAR",
        "created_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "datasets": [
        "name VARCHAR NOT NULL",
        "source VARCHAR",
        "license VARCHAR",
        "description VARCHAR",
        "updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "feedback": [
        "request_id VARCHAR NOT NULL",
        "score DOUBLE NOT NULL",
        "thumbs VARCHAR",
        "comment VARCHAR",
        "policy VARCHAR",
        "model VARCHAR",
        "created_at TIMESTAMP NOT NULL",
        "updated_at TIMESTAMP NOT NULL",
    ],
    "items": [
        "dataset VARCHAR NOT NULL",
        "item_id VARCHAR NOT NULL",
        "task VARCHAR NOT NULL",
        "prompt VARCHAR",
        "messages JSON",
        "reference VARCHAR",
        "grader VARCHAR",
        "split VARCHAR",
        "metadata JSON",
    ],
    "loop_pairs": [
        "request_id VARCHAR NOT NULL",
        "policy VARCHAR NOT NULL",
        "version INTEGER",
        "epoch BIGINT NOT NULL",
        "policy_id VARCHAR",
        "graded_at TIMESTAMP NOT NULL",
        "grader VARCHAR NOT NULL",
        "routed_model VARCHAR NOT NULL",
        "baseline_model VARCHAR NOT NULL",
        "routed_score DOUBLE NOT NULL",
        "baseline_score DOUBLE NOT NULL",
        "is_free BOOLEAN NOT NULL",
        "routed_cost_usd DOUBLE",
        "baseline_cost_usd DOUBLE",
        "shadow_cost_usd DOUBLE",
        "task VARCHAR",
        "prompt_sha256 VARCHAR",
        "seq BIGINT",
    ],
    "migrations": [
        "name VARCHAR NOT NULL",
        "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "models": [
        "name VARCHAR NOT NULL",
        "litellm_model VARCHAR",
        "api_base VARCHAR",
        "tier VARCHAR",
        "input_cost_per_token DOUBLE",
        "output_cost_per_token DOUBLE",
        "gpu_hourly_usd DOUBLE",
        "calibration JSON",
        "source VARCHAR",
        "updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "outcomes": [
        "dataset VARCHAR NOT NULL",
        "item_id VARCHAR NOT NULL",
        "model VARCHAR NOT NULL",
        "params_hash VARCHAR NOT NULL DEFAULT ''",
        "sample INTEGER NOT NULL DEFAULT 0",
        "response VARCHAR",
        "score DOUBLE",
        "prompt_tokens BIGINT",
        "completion_tokens BIGINT",
        "cost_usd DOUBLE",
        "latency_ms DOUBLE",
        "ttft_ms DOUBLE",
        "error VARCHAR",
        "run_id VARCHAR",
        "created_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
        "rounds INTEGER",
        "escalated VARCHAR",
    ],
    "outcome_rounds": [
        "dataset VARCHAR NOT NULL",
        "item_id VARCHAR NOT NULL",
        "model VARCHAR NOT NULL",
        "params_hash VARCHAR NOT NULL",
        "sample INTEGER NOT NULL",
        "round INTEGER NOT NULL",
        "called VARCHAR NOT NULL",
        "passed BOOLEAN NOT NULL",
        "prompt_tokens BIGINT",
        "completion_tokens BIGINT",
        "cost_usd DOUBLE",
        "latency_ms DOUBLE",
        "error VARCHAR",
        "run_id VARCHAR",
    ],
    "policies": [
        "policy_id VARCHAR NOT NULL",
        "name VARCHAR NOT NULL",
        "family VARCHAR NOT NULL",
        "dataset VARCHAR",
        "data_hash VARCHAR",
        "requirement VARCHAR",
        "baseline VARCHAR",
        "artifact JSON NOT NULL",
        "metrics JSON",
        "created_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
    ],
    "policy_events": [
        "name VARCHAR NOT NULL",
        "seq BIGINT NOT NULL",
        "version INTEGER NOT NULL",
        "event VARCHAR NOT NULL",
        "detail JSON",
        "happened_at TIMESTAMP NOT NULL",
    ],
    "policy_versions": [
        "name VARCHAR NOT NULL",
        "version INTEGER NOT NULL",
        "policy_id VARCHAR NOT NULL",
        "source VARCHAR NOT NULL",
        "parent_version INTEGER",
        "detail JSON",
        "created_at TIMESTAMP NOT NULL",
    ],
    "requests": [
        "request_id VARCHAR NOT NULL",
        "created_at TIMESTAMP NOT NULL",
        "policy VARCHAR",
        "requested_model VARCHAR NOT NULL",
        "model VARCHAR",
        "task VARCHAR",
        "stream BOOLEAN NOT NULL DEFAULT false",
        "attempts INTEGER NOT NULL DEFAULT 0",
        "fallbacks INTEGER NOT NULL DEFAULT 0",
        "status INTEGER NOT NULL",
        "error VARCHAR",
        "prompt_tokens BIGINT",
        "completion_tokens BIGINT",
        "cost_usd DOUBLE",
        "baseline_cost_usd DOUBLE",
        "latency_ms DOUBLE",
        "ttft_ms DOUBLE",
        "prompt VARCHAR",
        "cost_estimated BOOLEAN DEFAULT false",
        "protocol VARCHAR",
        "session VARCHAR",
        "cached_tokens BIGINT",
        "cache_write_tokens BIGINT",
        "reasoning_tokens BIGINT",
        "route_reason VARCHAR",
        "key_name VARCHAR",
        "dropped VARCHAR",
        "rounds INTEGER",
        "escalated VARCHAR",
        "review_id VARCHAR",
    ],
    "reviews": [
        "review_id VARCHAR NOT NULL",
        "request_id VARCHAR NOT NULL",
        "policy VARCHAR",
        "policy_version INTEGER",
        "epoch BIGINT",
        "policy_id VARCHAR",
        "baseline VARCHAR",
        "reviewer VARCHAR NOT NULL",
        "draft_model VARCHAR",
        "task VARCHAR",
        "prompt VARCHAR",
        "answer VARCHAR",
        "review_cost_usd DOUBLE",
        "draft_cost_usd DOUBLE",
        "created_at TIMESTAMP NOT NULL",
        "status VARCHAR NOT NULL DEFAULT 'pending'",
        "score DOUBLE",
        "corrected_answer VARCHAR",
        "reviewed_at TIMESTAMP",
    ],
    "runs": [
        "run_id VARCHAR NOT NULL",
        "kind VARCHAR NOT NULL",
        "dataset VARCHAR",
        "source VARCHAR",
        "params JSON",
        "status VARCHAR NOT NULL",
        "started_at TIMESTAMP NOT NULL DEFAULT current_timestamp",
        "finished_at TIMESTAMP",
        "n_outcomes BIGINT",
        "spend_usd DOUBLE",
    ],
}

EXPECTED_PRIMARY_KEYS = {
    "api_keys": ["name"],
    "key_holds": ["request_id"],
    "key_usage": ["name", "period_start"],
    "replicas": ["replica"],
    "counters": ["scope", "key"],
    "adaptive_drops": ["dataset", "model", "params_hash"],
    "datasets": ["name"],
    "feedback": ["request_id"],
    "items": ["dataset", "item_id"],
    "loop_pairs": ["request_id"],
    "migrations": ["name"],
    "models": ["name"],
    "outcomes": ["dataset", "item_id", "model", "params_hash", "sample"],
    "outcome_rounds": ["dataset", "item_id", "model", "params_hash", "sample", "round"],
    "policies": ["policy_id"],
    "policy_events": ["name", "seq"],
    "policy_versions": ["name", "version"],
    "requests": ["request_id"],
    "reviews": ["review_id"],
    "runs": ["run_id"],
}

# PostgreSQL's information_schema spelling -> DuckDB's, so one pinned schema serves both.
_PG_TYPES = {
    "character varying": "VARCHAR",
    "text": "VARCHAR",
    "double precision": "DOUBLE",
    "timestamp without time zone": "TIMESTAMP",
    "json": "JSON",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
}
_PG_DEFAULTS = {
    "CURRENT_TIMESTAMP": "current_timestamp",
    "''::character varying": "''",
    "'pending'::character varying": "'pending'",
}


@pytest.fixture
def target(store_target: str) -> str:
    """Where a not-yet-created store of each backend would live."""
    return store_target


@pytest.fixture
def store(target: str) -> Store:
    s = Store(target)
    s.migrate()
    return s


def schema(store: Store) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Columns (`name TYPE [NOT NULL] [DEFAULT x]`) and primary keys, from information_schema."""
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = current_schema() "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        key_rows = con.execute(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints c "
            "JOIN information_schema.key_column_usage k "
            "ON k.constraint_name = c.constraint_name AND k.table_name = c.table_name "
            "AND k.table_schema = c.table_schema "
            "WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() "
            "ORDER BY k.table_name, k.ordinal_position"
        ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, name, kind, nullable, default in rows:
        kind = _PG_TYPES.get(kind, kind)
        default = _PG_DEFAULTS.get(default, default)
        columns.setdefault(table, []).append(
            " ".join(
                [name, kind]
                + (["NOT NULL"] if nullable == "NO" else [])
                + ([f"DEFAULT {default}"] if default is not None else [])
            )
        )
    keys: dict[str, list[str]] = {}
    for table, name in key_rows:
        keys.setdefault(table, []).append(name)
    return columns, keys


def test_migrated_schema_is_exactly_the_pinned_one(store: Store) -> None:
    columns, keys = schema(store)
    assert columns == EXPECTED_SCHEMA
    assert keys == EXPECTED_PRIMARY_KEYS


def test_migrations_are_recorded_in_order_and_applied_once(target: str) -> None:
    store = Store(target)
    assert not store.exists()
    assert store.migrate() == NAMES
    assert store.exists()
    before = schema(store)
    assert Store(target).migrate() == []  # a second handle finds nothing to do
    assert schema(store) == before
    with store.connect(read_only=True) as con:
        recorded = [r[0] for r in con.execute("SELECT name FROM migrations").fetchall()]
    assert sorted(recorded) == sorted(NAMES) and len(recorded) == len(set(recorded))


def test_reads_never_create_a_store(target: str) -> None:
    store = Store(target)
    with pytest.raises(StoreNotFoundError) as caught:
        open_store(target, create=False)
    message = str(caught.value)
    assert store.location in message and "--db" in message and "tradeoff demo" in message
    assert "\n" not in message
    with pytest.raises(StoreNotFoundError), store.connect(read_only=True):
        pass
    assert not store.exists()
    if not target.startswith("postgresql://"):
        assert not Path(target).exists()
    open_store(target)  # a write creates it
    assert open_store(target, create=False).exists()


def test_a_transaction_rolls_back_everything_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as con:
        con.execute("INSERT INTO datasets (name) VALUES (?)", ["kept?"])
        con.execute("INSERT INTO models (name) VALUES (?)", ["kept?"])
        raise RuntimeError("boom")
    with pytest.raises(DB_ERRORS), store.transaction() as con:
        con.execute("INSERT INTO datasets (name) VALUES (?)", ["dup"])
        con.execute("INSERT INTO datasets (name) VALUES (?)", ["dup"])  # primary key
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM datasets").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM models").fetchone() == (0,)
    with store.transaction() as con:  # the store (and a pooled connection) work afterwards
        con.execute("INSERT INTO datasets (name) VALUES (?)", ["dup"])
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT name FROM datasets").fetchall() == [("dup",)]


def test_read_only_connections_refuse_writes_but_take_registered_rows(store: Store) -> None:
    with store.connect(read_only=True) as con, pytest.raises(DB_ERRORS, match=r"(?i)read.only"):
        con.execute("INSERT INTO datasets (name) VALUES ('x')")
    with store.connect(read_only=True) as con:
        # A read may still join against rows of its own (the dashboard's replay does).
        con.register("wanted", pd.DataFrame({"name": ["a", "b"]}))
        assert con.execute("SELECT count(*) FROM wanted").fetchall() == [(2,)]
        con.unregister("wanted")
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM datasets").fetchone() == (0,)


ROWS = pa.table(
    {
        "request_id": ["a", "b", "c"],
        "created_at": pa.array(
            [dt.datetime(2026, 1, 2, 3, 4, 5, 678901)] * 2 + [dt.datetime(1999, 12, 31)],
            pa.timestamp("us"),
        ),
        "requested_model": ["m", "m", "n"],
        "stream": [True, False, None],
        "status": pa.array([200, 502, 200], pa.int32()),
        "prompt_tokens": pa.array([1, None, 2**40], pa.int64()),
        "cost_usd": [0.1, None, 1e-9],
        "prompt": ['he said "hi", it\'s 100%\nsecond line; ?', "", None],
        "error": [None, "élan ☃ \\ back", None],
    }
)
_COLUMNS = ", ".join(ROWS.column_names)


def test_arrow_rows_insert_once_by_key_and_round_trip(store: Store) -> None:
    insert = (
        f"INSERT INTO requests ({_COLUMNS}) "
        f"SELECT {_COLUMNS.replace('stream', 'coalesce(stream, false)')} "
        "FROM batch ON CONFLICT (request_id) DO NOTHING"
    )
    for _ in range(2):  # a spool replayed after a crash: the second insert adds nothing
        with store.transaction() as con:
            con.register("batch", ROWS)
            con.execute(insert)
            con.unregister("batch")
    with store.connect(read_only=True) as con:
        got = con.execute(f"SELECT {_COLUMNS} FROM requests ORDER BY request_id").fetchall()
    expected = [tuple(row.values()) for row in ROWS.to_pylist()]
    expected[2] = (*expected[2][:3], False, *expected[2][4:])
    assert got == expected


def test_dataframe_rows_upsert_and_placeholders(store: Store) -> None:
    frame = pd.DataFrame({"name": ["a", "b"], "source": ["x", None], "tier": ["local", "local"]})
    upsert = (
        "INSERT INTO models (name, source, tier) SELECT name, source, $tier FROM frame "
        "ON CONFLICT (name) DO UPDATE SET source = coalesce(excluded.source, models.source), "
        "tier = excluded.tier"
    )
    with store.transaction() as con:
        con.register("frame", frame)
        con.execute(upsert, {"tier": "frontier"})
        con.register("frame", frame.assign(source=[None, "y"]))  # registering again replaces
        con.execute(upsert, {"tier": "100% local"})
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT name, source, tier FROM models ORDER BY name").fetchall()
        assert rows == [("a", "x", "100% local"), ("b", "y", "100% local")]
        # `?` and `%` inside literals are text; None binds as NULL where DuckDB would.
        row = con.execute(
            "SELECT '?', 'a%b', count(*) FROM models WHERE (? IS NULL OR name = ?) "
            "AND name = ANY(?)",
            [None, None, ["a", "zzz"]],
        ).fetchone()
        assert row == ("?", "a%b", 1)
        frame_out = con.execute("SELECT name, tier FROM models ORDER BY name").df()
    assert frame_out.to_dict("records") == [
        {"name": "a", "tier": "100% local"},
        {"name": "b", "tier": "100% local"},
    ]


def test_json_reads_back_as_text_and_defaults_are_utc(store: Store) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=5)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO runs (run_id, kind, status, params) VALUES (?, 'eval', 'done', ?)",
            ["r1", '{"a": [1, 2]}'],
        )
    with store.connect(read_only=True) as con:
        params, started = con.execute("SELECT params, started_at FROM runs").fetchone() or ()
        summed = con.execute("SELECT sum(n), avg(n) FROM (VALUES (1), (2)) v(n)").fetchone()
    assert isinstance(params, str) and '"a"' in params
    assert before <= started <= before + dt.timedelta(seconds=60)
    assert summed == (3, 1.5)


COUNTER = """
import sys
from tradeoff.evals.store import Store
store = Store(sys.argv[1])
for _ in range(int(sys.argv[2])):
    store.increment("test", "shared", 1.0)
print("done")
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_counters_are_exact_across_processes(store: Store) -> None:
    procs = [_python(COUNTER, _target_of(store), "40") for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    assert store.counter("test", "shared") == 120.0
    assert store.counter("test", "never") == 0.0
    assert store.increment("test", "shared", -20) == 100.0


def test_a_counter_says_when_it_last_changed(store: Store) -> None:
    assert store.counter_updated_at("test", "never") is None
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    store.increment("test", "ticks", 1)
    changed = store.counter_updated_at("test", "ticks")
    assert changed is not None and before <= changed <= before + dt.timedelta(seconds=60)


HOLD_LOCK = """
import pathlib, sys, time
from tradeoff.evals.store import Store
with Store(sys.argv[1]).lock("leader"):
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
"""


def _target_of(store: Store) -> str:
    return getattr(store, "url", None) or str(store.location)


def test_a_lock_is_exclusive_across_processes(store: Store, tmp_path: Path) -> None:
    ready = tmp_path / "holding"
    holder = _python(HOLD_LOCK, _target_of(store), str(ready), "3")
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert holder.poll() is None, holder.communicate()[1]
            assert time.monotonic() < deadline, "the lock holder never started"
            time.sleep(0.02)
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match="leader"), store.lock("leader", timeout_s=0.5):
            pass
        assert 0.4 <= time.monotonic() - started < 2.5
        with store.lock("another", timeout_s=0.5):  # other names are independent
            pass
        with store.lock("leader", timeout_s=30):  # granted once the holder lets go
            pass
    finally:
        holder.communicate(timeout=60)
    assert holder.returncode == 0


MIGRATOR = """
import json, os, pathlib, sys, time
from tradeoff.evals.store import Store
go = pathlib.Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
print(json.dumps(Store(sys.argv[1]).migrate()))
"""


def test_replicas_migrate_an_empty_postgres_database_at_the_same_moment(
    pg_url: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [_python(MIGRATOR, pg_url, str(go)) for _ in range(6)]
    time.sleep(1.0)  # every interpreter started and waiting
    go.touch()
    applied: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        applied += json.loads(out)
    assert sorted(applied) == sorted(NAMES)  # each migration applied by exactly one replica
    columns, _ = schema(Store(pg_url))
    assert columns == EXPECTED_SCHEMA


def test_db_resolution_order_and_the_per_user_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_db() == default_db() == tmp_path / "data" / "tradeoff" / "tradeoff.duckdb"
    monkeypatch.setenv("TRADEOFF_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db() == tmp_path / "env.duckdb"
    assert resolve_db(tmp_path / "flag.duckdb") == tmp_path / "flag.duckdb"
    assert resolve_db("postgresql://u@h/db") == "postgresql://u@h/db"  # a URL stays a URL
    with pytest.raises(UsageError, match="unsupported store URL"):
        resolve_db("mysql://u@h/db")
    monkeypatch.delenv("TRADEOFF_DB")
    monkeypatch.chdir(tmp_path)
    store = open_store()  # a write creates the default store, folders included
    assert Path(store.location) == default_db() and default_db().is_file()
    assert not (tmp_path / "tradeoff.duckdb").exists()  # not in the working directory


def test_a_missing_store_mentions_one_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    open_store(tmp_path / "tradeoff.duckdb")
    with pytest.raises(StoreNotFoundError, match=r"there is one in this folder: --db tradeoff"):
        open_store(create=False)


def test_postgres_failures_are_one_line_and_never_show_the_password(pg_cluster: object) -> None:
    url = "postgresql://someone:s3cret@127.0.0.1:1/nope"
    assert redact(url) == "postgresql://someone:***@127.0.0.1:1/nope"
    with pytest.raises(StoreError) as caught:
        Store(url, timeout_s=2).migrate()
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)
    assert "cannot connect to store postgresql://someone:***@127.0.0.1:1/nope" in str(caught.value)


# --- DuckDB: one file shared by a writer process and reader processes ----------------------------

WRITER = """
import sys, uuid
from tradeoff.evals.store import Store
store = Store(sys.argv[1], timeout_s=60)
for batch in range({batches}):
    with store.transaction() as con:
        con.executemany(
            "INSERT INTO requests (request_id, created_at, requested_model, status) "
            "VALUES (?, current_timestamp, 'm', 200)",
            [[f"w-{{batch}}-{{i}}"] for i in range({per_batch})],
        )
print("writer done")
"""

READER = """
import sys, time
from tradeoff.evals.store import Store
store = Store(sys.argv[1], timeout_s=60)
done, seen, queries = sys.argv[2], [], 0
while True:
    finished = __import__("os").path.exists(done)
    with store.connect(read_only=True) as con:
        n, distinct = con.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM requests"
        ).fetchone()
    assert n == distinct, (n, distinct)
    assert not seen or n >= seen[-1], "a reader saw rows disappear"
    seen.append(n); queries += 1
    if finished:
        break
    time.sleep(0.02)  # a poller (the dashboard), not a busy loop that starves the writer
print(f"reader {queries} {seen[-1]}")
"""


@pytest.fixture
def duck(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store.duckdb")
    s.migrate()
    return s


def test_writer_and_readers_share_the_file_without_losses(duck: Store, tmp_path: Path) -> None:
    batches, per_batch = 40, 5
    done = tmp_path / "writer-finished"
    readers = [_python(READER, duck.location, str(done)) for _ in range(2)]
    writer = _python(WRITER.format(batches=batches, per_batch=per_batch), duck.location)
    w_out, w_err = writer.communicate(timeout=120)
    done.touch()
    results = [r.communicate(timeout=120) for r in readers]
    assert writer.returncode == 0, w_err
    assert "writer done" in w_out
    for reader, (out, err) in zip(readers, results, strict=True):
        assert reader.returncode == 0, err
        queries, last = (int(x) for x in out.split()[1:])
        assert queries >= 2  # it really read while the writer wrote
        assert last == batches * per_batch
    with duck.connect(read_only=True) as con:
        n, distinct = con.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM requests"
        ).fetchone() or (0, 0)
    assert n == distinct == batches * per_batch


HOLDER = """
import sys, time, duckdb, pathlib
con = duckdb.connect(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()
time.sleep(float(sys.argv[3]))
con.close()
"""


def test_a_file_lock_held_past_the_timeout_raises_store_busy(duck: Store, tmp_path: Path) -> None:
    ready = tmp_path / "holding"
    holder = _python(HOLDER, duck.location, str(ready), "3")
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None, holder.communicate()[1]
            assert time.monotonic() < deadline, "the lock holder never started"
            time.sleep(0.02)
        impatient = Store(duck.location, timeout_s=0.5)
        started = time.monotonic()
        with (
            pytest.raises(StoreBusyError, match=r"stayed locked .* retry when it finishes"),
            impatient.connect(),
        ):
            pass
        assert 0.4 <= time.monotonic() - started < 2.5
    finally:
        holder.communicate(timeout=30)
    with Store(duck.location, timeout_s=5).connect() as con:  # free again once the holder exits
        assert con.execute("SELECT count(*) FROM migrations").fetchone() == (len(MIGRATIONS),)


def _torn(duck: Store) -> bytes:
    """Tear the store's file as a reader may find it while a writer finishes with it; the
    whole file, to put back."""
    with duck.transaction() as con:
        con.execute("CREATE TABLE filler AS SELECT range AS n FROM range(20000)")
    path = Path(duck.location)
    whole = path.read_bytes()
    path.write_bytes(whole[:4096])
    return whole


def test_a_file_read_torn_at_open_is_opened_again(duck: Store) -> None:
    whole = _torn(duck)
    mended = threading.Timer(0.5, Path(duck.location).write_bytes, [whole])
    mended.start()
    try:
        with Store(duck.location, timeout_s=20).connect(read_only=True) as con:
            assert con.execute("SELECT count(*) FROM filler").fetchall() == [(20000,)]
    finally:
        mended.join()


def test_a_file_that_stays_torn_is_a_store_error_soon(duck: Store) -> None:
    _torn(duck)
    started = time.monotonic()
    with (
        pytest.raises(StoreError, match=r"cannot open store .*Could not read enough bytes"),
        Store(duck.location, timeout_s=2).connect(read_only=True),
    ):
        pass
    assert 0.9 <= time.monotonic() - started < 10  # retried for half the timeout, no longer
