"""A synthetic store for the dashboard's tests and benchmark, written with SQL into the real schema.

Three models with known per-task accuracy and prices, two tasks, repeated samples, some errors,
fitted-policy rows (with versions, what they were accepted for and their held-out figures, all
computed from the seeded outcomes themselves), a proxy request log with pass-through traffic and
client errors, and the loop's history (`tests/dashboard/seed_loop.py`). Scores come from a hash
of (item, model, sample), so the same arguments always give the same store, at any size (the
benchmark asks for 1M outcomes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tests.dashboard.seed_loop import insert_loop, insert_requests, insert_reviews
from tradeoff.evals.store import Store
from tradeoff.policies.versions import append_event, record_version

Con = duckdb.DuckDBPyConnection

DATASET = "synthetic"
BASELINE = "large"
Z_ONE_SIDED = 1.645  # the acceptance bound's 95% one-sided normal quantile
Z95 = 1.96


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
# name -> task table; each is accepted for the share its train bound reaches (`insert_policy`).
# The loop (seed_loop.py) serves and refits the first.
POLICIES = {
    "table-math-large": {"math": "large", "code": "small"},
    "cheap-first": {"math": "medium", "code": "small"},
}


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
                "INSERT INTO models (name, litellm_model, tier, input_cost_per_token, "
                "output_cost_per_token, source) VALUES (?, ?, ?, ?, ?, 'seed')",
                [
                    m.name,
                    f"openai/{m.name}",
                    "frontier" if m.name == "large" else "local",
                    m.cost_usd / 80,
                    m.cost_usd / 80,
                ],
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
        for name, table in POLICIES.items():
            policy_id = insert_policy(con, name, table)
            version = record_version(con, name, policy_id, "fit")
            append_event(con, name, version, "promoted", {"by": "fit"})
        insert_requests(con, n_requests)
        insert_loop(con, "table-math-large", n_requests, insert_policy)
        insert_reviews(con)
    return store


def _paired(con: Con, table: dict[str, str], split: str) -> dict[str, float]:
    """The task table's figures on `split` (sample 0), paired with the baseline per item."""
    cases = " ".join(f"WHEN '{task}' THEN '{model}'" for task, model in table.items())
    row = con.execute(
        f"""
        WITH per AS (
            SELECT o.item_id, i.task, o.model, coalesce(o.score, 0) AS score, o.cost_usd,
                   o.latency_ms
            FROM outcomes o JOIN items i USING (dataset, item_id)
            WHERE i.dataset = '{DATASET}' AND i.split = '{split}' AND o.sample = 0
        ),
        pair AS (
            SELECT c.score AS a, b.score AS b, c.cost_usd AS cost, b.cost_usd AS base_cost,
                   c.latency_ms
            FROM per c JOIN per b ON b.item_id = c.item_id AND b.model = '{BASELINE}'
            WHERE c.model = CASE c.task {cases} END
        )
        SELECT count(*), avg(a), stddev_samp(a), avg(b), stddev_samp(b), avg(cost),
               avg(base_cost), quantile_cont(latency_ms, 0.95)
        FROM pair
        """
    ).fetchone()
    assert row is not None
    n, acc, sd, base_acc, base_sd, cost, base_cost, p95 = row
    spread = con.execute(
        f"""
        WITH per AS (
            SELECT o.item_id, i.task, o.model, coalesce(o.score, 0) AS score
            FROM outcomes o JOIN items i USING (dataset, item_id)
            WHERE i.dataset = '{DATASET}' AND i.split = '{split}' AND o.sample = 0
        )
        SELECT stddev_samp(c.score - ? * b.score)
        FROM per c JOIN per b ON b.item_id = c.item_id AND b.model = '{BASELINE}'
        WHERE c.model = CASE c.task {cases} END
        """,
        [acc / base_acc],
    ).fetchone()
    se = spread[0] / (math.sqrt(n) * base_acc)  # the delta method for a ratio of paired means
    return {
        "n": n,
        "accuracy": acc,
        "accuracy_sd": sd,
        "base_accuracy": base_acc,
        "base_sd": base_sd,
        "cost": cost,
        "base_cost": base_cost,
        "p95": p95,
        "kept": acc / base_acc,
        "kept_se": se,
    }


def insert_policy(
    con: Con,
    name: str,
    table: dict[str, str],
    *,
    policy_id: str | None = None,
    dataset: str = DATASET,
    requirement: str | None = None,
) -> str:
    """A policy row accepted on the train split at a one-sided 95% bound of its kept share (its
    requirement, unless given, is that bound rounded down to a percent) and measured on the test
    split (the figures of `dataset`'s outcomes, which a refit's candidate copies). Returns its
    policy_id."""
    train, test = _paired(con, table, "train"), _paired(con, table, "test")
    bound = train["kept"] - Z_ONE_SIDED * train["kept_se"]
    share = math.floor(bound * 100) / 100
    requirement = requirement or f"accuracy >= {share * 100:g}% of baseline"
    half = Z95 * test["accuracy_sd"] / math.sqrt(test["n"])
    base_half = Z95 * test["base_sd"] / math.sqrt(test["n"])
    metrics = {
        "policy": name,
        "family": "task_table",
        "dataset": dataset,
        "split": "test",
        "n": test["n"],
        "accuracy": test["accuracy"],
        "accuracy_ci": [test["accuracy"] - half, test["accuracy"] + half],
        "cost_per_request_usd": test["cost"],
        "reliability": 0.95,
        "p95_latency_ms": test["p95"],
        "accuracy_vs_baseline": test["kept"],
        "accuracy_vs_baseline_ci": [
            test["kept"] - Z95 * test["kept_se"],
            test["kept"] + Z95 * test["kept_se"],
        ],
        "savings_vs_baseline": 1 - test["cost"] / test["base_cost"],
        "models_used": {m: 0.5 for m in table.values()},
        "baseline": {
            "model": BASELINE,
            "accuracy": test["base_accuracy"],
            "accuracy_ci": [test["base_accuracy"] - base_half, test["base_accuracy"] + base_half],
            "cost_per_request_usd": test["base_cost"],
        },
        "split_spec": {
            "train_split": "train",
            "test_split": "test",
            "test_fraction": None,
            "seed": 0,
        },
        "acceptance": {
            "items": train["n"],
            "level": 0.05,
            "bounds": {requirement: bound},
            "keeps_baseline": False,
        },
    }
    artifact = {
        "version": 1,
        "name": name,
        "family": "task_table",
        "params": {"table": table, "default": BASELINE},
        "models": sorted(set(table.values())),
        "dataset": dataset,
        "requirement": f"{requirement}; minimize cost",
        "baseline": BASELINE,
        "metrics": metrics,
    }
    policy_id = policy_id or f"pol-{name}"
    con.execute(
        "INSERT INTO policies (policy_id, name, family, dataset, data_hash, requirement, "
        "baseline, artifact, metrics) VALUES (?, ?, 'task_table', ?, 'seed', ?, ?, ?, ?)",
        [
            policy_id,
            name,
            dataset,
            artifact["requirement"],
            BASELINE,
            json.dumps(artifact),
            json.dumps(metrics),
        ],
    )
    return policy_id


WIDE = "wide"
WIDE_TASKS = 36
# model -> (cost per call, accuracy on even tasks, on odd tasks)
WIDE_MODELS = {"alpha": (0.0001, 0.92, 0.45), "beta": (0.001, 0.85, 0.85)}


def seed_wide(store: Store, *, per_task: int = 12) -> None:
    """A second dataset the way imports often arrive: 2 models x 36 tasks, no named split, no
    latencies; and a policy really fitted on it (`fit_policy`, so held out on a seeded hash
    split, as `tradeoff fit` does when a dataset has no `test` split)."""
    from tradeoff.policies.fit.fitting import fit_policy
    from tradeoff.policies.fit.options import FitOptions

    u = "((hash(item_id || model || '{salt}') % 100000) / 100000.0)"
    with store.transaction() as con:
        con.execute(
            f"INSERT INTO datasets (name, source, license) VALUES ('{WIDE}', 'seed', 'CC0')"
        )
        con.execute(
            f"""
            INSERT INTO items (dataset, item_id, task, prompt, reference, grader)
            SELECT '{WIDE}', 'w-' || lpad(r::VARCHAR, 5, '0'),
                   'task-' || lpad((r % {WIDE_TASKS})::VARCHAR, 2, '0'), 'Prompt ' || r, 'x',
                   'exact'
            FROM range({WIDE_TASKS * per_task}) t(r)
            """
        )
        models = ", ".join(f"('{m}', {c}, {e}, {o})" for m, (c, e, o) in WIDE_MODELS.items())
        con.execute(
            f"""
            INSERT INTO outcomes (dataset, item_id, model, sample, score, prompt_tokens,
                                  completion_tokens, cost_usd)
            SELECT '{WIDE}', item_id, model, 0,
                   CASE WHEN {u.format(salt="s")} < CASE WHEN right(task, 1)::INT % 2 = 0
                        THEN even ELSE odd END THEN 1.0 ELSE 0.0 END, 30, 10, cost
            FROM (SELECT item_id, task FROM items WHERE dataset = '{WIDE}') i,
                 (SELECT * FROM (VALUES {models}) m(model, cost, even, odd)) m
            """
        )
    fit_policy(
        store,
        FitOptions(
            WIDE,
            "accuracy >= 90% of baseline",
            baseline="beta",
            seed=0,
            n_trials=40,
            name="wide-policy",
        ),
    )
