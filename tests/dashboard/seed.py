"""A synthetic store for the dashboard's tests and benchmark, written with SQL into the real schema.

Three models with known per-task accuracy and prices, two tasks, repeated samples, some errors,
fitted-policy rows and a proxy request log. Scores come from a hash of (item, model, sample), so
the same arguments always give the same store, at any size (the benchmark asks for 1M outcomes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from evals.store import Store

Con = duckdb.DuckDBPyConnection

DATASET = "synthetic"


@dataclass(frozen=True)
class SeedModel:
    name: str
    cost_usd: float  # per call
    accuracy: dict[str, float]  # per task
    latency_ms: float
    error_rate: float = 0.0


MODELS = (
    SeedModel("small", 0.0002, {"math": 0.55, "code": 0.80}, 300, error_rate=0.02),
    SeedModel("medium", 0.002, {"math": 0.80, "code": 0.88}, 700),
    SeedModel("large", 0.02, {"math": 0.93, "code": 0.92}, 1500),
)
TASKS = ("math", "code")


def _models_sql() -> str:
    rows = [
        f"('{m.name}', {m.cost_usd}, {m.accuracy['math']}, {m.accuracy['code']}, "
        f"{m.latency_ms}, {m.error_rate})"
        for m in MODELS
    ]
    return (
        "SELECT * FROM (VALUES " + ", ".join(rows) + ") m(name, cost, acc_math, acc_code, lat, err)"
    )


def seed_store(path: Path, *, n_items: int = 200, samples: int = 2, n_requests: int = 500) -> Store:
    """Create and fill a store; returns it (no connection held)."""
    store = Store(path)
    # A uniform draw in [0, 1) per (item, model, sample, salt), reproducible at any scale.
    u = "((hash(i.item_id || m.name || s.sample::VARCHAR || '{salt}') % 100000) / 100000.0)"
    with store.transaction() as con:
        con.execute(
            "INSERT INTO datasets (name, source, license, description) "
            f"VALUES ('{DATASET}', 'tests/dashboard/seed.py', 'CC0', 'synthetic outcomes')"
        )
        for m in MODELS:
            con.execute(
                "INSERT INTO models (name, litellm_model, tier, source) VALUES (?, ?, ?, 'seed')",
                [m.name, f"openai/{m.name}", "frontier" if m.name == "large" else "local"],
            )
        con.execute(
            f"""
            INSERT INTO items (dataset, item_id, task, prompt, reference, grader, split)
            SELECT '{DATASET}', 'item-' || lpad(r::VARCHAR, 7, '0'),
                   CASE WHEN r % 2 = 0 THEN 'math' ELSE 'code' END,
                   'Question ' || r::VARCHAR || ': what is ' || r::VARCHAR || ' + 1?',
                   (r + 1)::VARCHAR, CASE WHEN r % 2 = 0 THEN 'numeric' ELSE 'exact' END,
                   CASE WHEN r % 10 < 7 THEN 'train' ELSE 'test' END
            FROM range({n_items}) t(r)
            """
        )
        con.execute(
            f"""
            INSERT INTO outcomes (dataset, item_id, model, sample, response, score,
                                  prompt_tokens, completion_tokens, cost_usd, latency_ms, error,
                                  run_id)
            WITH m AS ({_models_sql()}),
            draws AS (
                SELECT i.item_id, i.task, i.reference, m.*, s.sample,
                       {u.format(salt="score")} AS u_score, {u.format(salt="err")} AS u_err,
                       {u.format(salt="lat")} AS u_lat
                FROM items i, m, (SELECT range::INTEGER AS sample FROM range({samples})) s
                WHERE i.dataset = '{DATASET}'
            )
            SELECT '{DATASET}', item_id, name, sample,
                   CASE WHEN u_err < err THEN NULL
                        WHEN u_score < CASE WHEN task = 'math' THEN acc_math ELSE acc_code END
                        THEN reference ELSE 'wrong ' || reference END,
                   CASE WHEN u_err < err THEN NULL
                        WHEN u_score < CASE WHEN task = 'math' THEN acc_math ELSE acc_code END
                        THEN 1.0 ELSE 0.0 END,
                   40, 10, cost, lat * (0.5 + u_lat),
                   CASE WHEN u_err < err THEN 'upstream timeout' END, 'seed-run'
            FROM draws
            """
        )
        _insert_policy(con, "table-math-large", "task_table", {"math": "large", "code": "small"})
        _insert_policy(con, "cheap-first", "task_table", {"math": "medium", "code": "small"})
        _insert_requests(con, n_requests)
    return store


def _insert_policy(con: Con, name: str, family: str, table: dict[str, str]) -> None:
    """A policy row whose held-out metrics are computed from the seeded outcomes themselves."""
    cases = " ".join(f"WHEN '{task}' THEN '{model}'" for task, model in table.items())
    row = con.execute(
        f"""
        WITH chosen AS (
            SELECT o.item_id, coalesce(o.score, 0) AS score, o.cost_usd, o.latency_ms
            FROM outcomes o JOIN items i USING (dataset, item_id)
            WHERE i.split = 'test' AND o.sample = 0 AND o.model = CASE i.task {cases} END
        )
        SELECT count(*), avg(score), stddev_samp(score), avg(cost_usd),
               quantile_cont(latency_ms, 0.95)
        FROM chosen
        """
    ).fetchone()
    n, acc, sd, cost, p95 = row
    half = 1.96 * sd / n**0.5
    metrics = {
        "policy": name,
        "family": family,
        "dataset": DATASET,
        "split": "test",
        "n": n,
        "accuracy": acc,
        "accuracy_ci": [acc - half, acc + half],
        "cost_per_request_usd": cost,
        "reliability": 0.95,
        "p95_latency_ms": p95,
        "models_used": {m: 0.5 for m in table.values()},
        "baseline": {"model": "large"},
    }
    artifact = {
        "version": 1,
        "name": name,
        "family": family,
        "params": {"table": table, "default": "large"},
        "models": sorted(set(table.values())),
        "requirement": "accuracy >= 90% of baseline",
        "baseline": "large",
        "metrics": metrics,
    }
    con.execute(
        "INSERT INTO policies (policy_id, name, family, dataset, data_hash, requirement, "
        "baseline, artifact, metrics) VALUES (?, ?, ?, ?, 'seed', ?, 'large', ?, ?)",
        [
            f"pol-{name}",
            name,
            family,
            DATASET,
            artifact["requirement"],
            json.dumps(artifact),
            json.dumps(metrics),
        ],
    )


def _insert_requests(con: Con, n: int) -> None:
    """A request log over the last `n` minutes: mostly `small`, some fallbacks and 5xx errors."""
    con.execute(
        f"""
        INSERT INTO requests (request_id, created_at, policy, requested_model, model, task,
                              stream, attempts, fallbacks, status, error, prompt_tokens,
                              completion_tokens, cost_usd, baseline_cost_usd, latency_ms)
        SELECT 'req-' || r::VARCHAR, now()::TIMESTAMP - to_minutes({n} - r),
               'table-math-large', 'table-math-large',
               CASE WHEN r % 4 = 0 THEN 'large' ELSE 'small' END,
               CASE WHEN r % 2 = 0 THEN 'math' ELSE 'code' END,
               r % 5 = 0, 1 + (r % 20 = 0)::INT, (r % 20 = 0)::INT,
               CASE WHEN r % 50 = 0 THEN 502 ELSE 200 END,
               CASE WHEN r % 50 = 0 THEN 'upstream 502' END, 40, 10,
               CASE WHEN r % 4 = 0 THEN 0.02 ELSE 0.0002 END, 0.02,
               CASE WHEN r % 4 = 0 THEN 1500 ELSE 300 END + (r % 7) * 10
        FROM range({n}) t(r)
        """
    )
