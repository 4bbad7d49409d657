"""The store: the exact schema after migration, and the short-connection concurrency mechanism
exercised by real concurrent processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evals.errors import StoreBusyError
from evals.migrations import MIGRATIONS
from evals.store import Store, open_store, resolve_db_path

REPO = Path(__file__).resolve().parents[2]

# The schema every migration together produces. Appending a migration? Update this to match:
# it is the reviewable record of what the store looks like.
EXPECTED_SCHEMA = {
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
    "datasets": ["name"],
    "feedback": ["request_id"],
    "items": ["dataset", "item_id"],
    "loop_pairs": ["request_id"],
    "migrations": ["name"],
    "models": ["name"],
    "outcomes": ["dataset", "item_id", "model", "params_hash", "sample"],
    "policies": ["policy_id"],
    "policy_events": ["name", "seq"],
    "policy_versions": ["name", "version"],
    "requests": ["request_id"],
    "runs": ["run_id"],
}


def schema(store: Store) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    with store.connect(read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        columns = {}
        for table in tables:
            rows = con.execute(
                "SELECT column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
            columns[table] = [
                " ".join(
                    [name, kind]
                    + (["NOT NULL"] if nullable == "NO" else [])
                    + ([f"DEFAULT {default}"] if default is not None else [])
                )
                for name, kind, nullable, default in rows
            ]
        keys = {
            table: list(cols)
            for table, cols in con.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        }
    return columns, keys


def test_migrated_schema_is_exactly_the_pinned_one(store: Store) -> None:
    columns, keys = schema(store)
    assert columns == EXPECTED_SCHEMA
    assert keys == EXPECTED_PRIMARY_KEYS


def test_migrations_are_recorded_in_order_and_applied_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "fresh.duckdb")
    assert store.migrate() == [name for name, _ in MIGRATIONS]
    before = schema(store)
    assert Store(store.path).migrate() == []  # a second handle finds nothing to do
    assert schema(store) == before
    with store.connect(read_only=True) as con:
        recorded = [r[0] for r in con.execute("SELECT name FROM migrations").fetchall()]
    assert recorded == sorted(name for name, _ in MIGRATIONS)


def test_db_path_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRADEOFF_DB", raising=False)
    assert resolve_db_path() == Path("tradeoff.duckdb")
    monkeypatch.setenv("TRADEOFF_DB", str(tmp_path / "env.duckdb"))
    assert resolve_db_path() == tmp_path / "env.duckdb"
    assert resolve_db_path(tmp_path / "flag.duckdb") == tmp_path / "flag.duckdb"
    assert open_store().path.exists()


WRITER = """
import sys, uuid
from evals.store import Store
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
from evals.store import Store
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


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_writer_and_readers_share_the_file_without_losses(store: Store, tmp_path: Path) -> None:
    batches, per_batch = 40, 5
    done = tmp_path / "writer-finished"
    readers = [_python(READER, str(store.path), str(done)) for _ in range(2)]
    writer = _python(WRITER.format(batches=batches, per_batch=per_batch), str(store.path))
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
    with store.connect(read_only=True) as con:
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


def test_a_lock_held_past_the_timeout_raises_store_busy(store: Store, tmp_path: Path) -> None:
    ready = tmp_path / "holding"
    holder = _python(HOLDER, str(store.path), str(ready), "3")
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None, holder.communicate()[1]
            assert time.monotonic() < deadline, "the lock holder never started"
            time.sleep(0.02)
        impatient = Store(store.path, timeout_s=0.5)
        started = time.monotonic()
        with (
            pytest.raises(StoreBusyError, match=r"stayed locked .* retry when it finishes"),
            impatient.connect(),
        ):
            pass
        assert 0.4 <= time.monotonic() - started < 2.5
    finally:
        holder.communicate(timeout=30)
    with Store(store.path, timeout_s=5).connect() as con:  # free again once the holder exits
        assert con.execute("SELECT count(*) FROM migrations").fetchone() == (len(MIGRATIONS),)
