"""The dashboard's reads: each returns a small DataFrame, whatever the store size.

Each function takes an open store connection (the caller opens a short read-only one per query,
since the proxy writes the same store). Light reads (counts, lists, a page of items, the
request log) are portable SQL the store runs itself. The heavy ones (per-model statistics, the
oracle, the item spread: passes over every outcome of a dataset) are DuckDB SQL: on a DuckDB
store they run on the file; a PostgreSQL store ships the dataset's outcome and item rows to an
in-memory DuckDB (one COPY each, `_analytics`) and they run there. Measured on 1M outcomes
(benchmarks/README.md, Dashboard), that is ~2-3x faster than PostgreSQL aggregating them itself.

Definitions, per model (and per task), over the items of the chosen split:
- accuracy: mean over items of the item's mean score across samples; an error scores 0.
- cost per 1k requests: 1000 x mean `cost_usd` per call.
- consistency: mean over items of the share of an item's non-error samples equal to its most
  frequent score; 1.0 when each item has one sample.
- reliability: consistency x (1 - error rate over calls), as `evals.reliability` defines it.
- CIs are 95% normal intervals over items (mean +- 1.96 sd / sqrt(n)).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd

from evals.store import Connection

Con = Connection
Duck = duckdb.DuckDBPyConnection
Z95 = 1.96

# What a server store ships to DuckDB for the analytics of one dataset (and split): only the
# columns they read; an error's text is reduced to '' (`error IS NOT NULL` keeps its meaning).
_IN_SPLIT = " AND ($split IS NULL OR split = $split)"
_ANALYTIC_ROWS = {
    "outcomes": "SELECT item_id, model, score, CASE WHEN error IS NULL THEN NULL ELSE '' END "
    "AS error, cost_usd, latency_ms FROM outcomes WHERE dataset = $dataset AND ($split IS NULL "
    f"OR item_id IN (SELECT item_id FROM items WHERE dataset = $dataset{_IN_SPLIT}))",
    "items": f"SELECT item_id, task, split FROM items WHERE dataset = $dataset{_IN_SPLIT}",
}


@contextmanager
def _analytics(con: Con, dataset: str, split: str | None) -> Iterator[Duck]:
    """A DuckDB connection holding `dataset`'s outcomes and items (at least those of `split`):
    the store's own connection when the store is a DuckDB file, else an in-memory DuckDB
    loaded from the store (one COPY per table)."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        yield con
        return
    literal = "'" + dataset.replace("'", "''") + "'"
    with duckdb.connect() as local:
        local.execute("SET enable_progress_bar = false")
        for table, sql in _ANALYTIC_ROWS.items():
            rows = con.fetch_arrow(sql, _params(dataset, split))  # type: ignore[attr-defined]
            local.register(f"{table}_rows", rows)
            local.execute(
                f"CREATE TEMP VIEW {table} AS SELECT {literal} AS dataset, * FROM {table}_rows"
            )
        yield local


# The outcomes of one dataset (and split), joined with their items' task. Parameters: dataset,
# split (NULL split = every item).
_OUTCOMES = """
    SELECT o.model, o.item_id, i.task, coalesce(o.score, 0) AS score,
           (o.error IS NOT NULL) AS failed, o.cost_usd, o.latency_ms
    FROM outcomes o JOIN (
        SELECT item_id, task FROM items
        WHERE dataset = $dataset AND ($split IS NULL OR split = $split)
    ) i ON i.item_id = o.item_id
    WHERE o.dataset = $dataset
"""

_OUTCOMES_BY_MODEL = """
    SELECT model, latency_ms FROM outcomes
    WHERE dataset = $dataset AND ($split IS NULL OR item_id IN (
        SELECT item_id FROM items WHERE dataset = $dataset AND split = $split))
"""

# Agreement of an item's non-error samples with their most frequent score. With pass/fail scores
# it is one pass (the larger of the two counts); any other scores need a vote count per value.
_BINARY_AGREEMENT = (
    "greatest(count_if(score = 1 AND NOT failed), count_if(score = 0 AND NOT failed))"
    " / nullif(count_if(NOT failed), 0)"
)
_VOTES = f"""
    SELECT model, item_id, max(k) / sum(k) AS agreement FROM (
        SELECT model, item_id, round(score, 6) AS outcome, count(*) AS k
        FROM ({_OUTCOMES}) WHERE NOT failed GROUP BY model, item_id, outcome
    ) GROUP BY model, item_id
"""


def _params(dataset: str, split: str | None) -> dict[str, Any]:
    return {"dataset": dataset, "split": split}


def _per_item(con: Duck, dataset: str, split: str | None) -> None:
    """Materialise TEMP TABLE per_item: one row per (model, item) with its mean score and cost,
    calls, errors and agreement. Built once per connection; every summary reads it."""
    params = _params(dataset, split)
    row = con.execute(
        "SELECT coalesce(bool_and(score IN (0, 1) OR score IS NULL), true) FROM outcomes "
        "WHERE dataset = $dataset",
        {"dataset": dataset},
    ).fetchone()
    binary = bool(row and row[0])
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE per_item AS
        SELECT model, any_value(task) AS task, item_id, avg(score) AS score,
               avg(cost_usd) AS cost, count(*) AS calls, count_if(failed) AS errors,
               {_BINARY_AGREEMENT if binary else "NULL::DOUBLE"} AS agreement
        FROM ({_OUTCOMES}) GROUP BY model, item_id
        """,
        params,
    )
    if not binary:
        con.execute(
            f"UPDATE per_item SET agreement = v.agreement FROM ({_VOTES}) v "
            "WHERE per_item.model = v.model AND per_item.item_id = v.item_id",
            params,
        )


def overview(con: Con) -> dict[str, int]:
    """Row counts that tell an empty store from a populated one."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM datasets), (SELECT count(*) FROM items), "
        "(SELECT count(*) FROM outcomes), (SELECT count(*) FROM policies), "
        "(SELECT count(*) FROM requests)"
    ).fetchone()
    assert row is not None
    return dict(zip(("datasets", "items", "outcomes", "policies", "requests"), row, strict=True))


def datasets_with_outcomes(con: Con) -> list[str]:
    rows = con.execute("SELECT DISTINCT dataset FROM outcomes ORDER BY dataset").fetchall()
    return [r[0] for r in rows]


def models_by_accuracy(con: Con, dataset: str) -> list[str]:
    """The dataset's models, most accurate first (a cheap outcome-level mean, for defaults)."""
    rows = con.execute(
        "SELECT model FROM outcomes WHERE dataset = ? GROUP BY model "
        "ORDER BY avg(coalesce(score, 0)) DESC, model",
        [dataset],
    ).fetchall()
    return [r[0] for r in rows]


def splits(con: Con, dataset: str) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT split FROM items WHERE dataset = ? AND split IS NOT NULL ORDER BY split",
        [dataset],
    ).fetchall()
    return [r[0] for r in rows]


def tasks(con: Con, dataset: str) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT task FROM items WHERE dataset = ? ORDER BY task", [dataset]
    ).fetchall()
    return [r[0] for r in rows]


def model_stats(con: Con, dataset: str, split: str | None, *, by_task: bool) -> pd.DataFrame:
    """Accuracy, cost, latency and reliability per model (and per task when `by_task`)."""
    with _analytics(con, dataset, split) as duck:
        _per_item(duck, dataset, split)
        return _stats(duck, dataset, split, by_task=by_task)


def _stats(con: Duck, dataset: str, split: str | None, *, by_task: bool) -> pd.DataFrame:
    keys = "model, task" if by_task else "model"
    # Per model alone the task is not needed: a semi-join on the split is cheaper than the join.
    rows = _OUTCOMES if by_task else _OUTCOMES_BY_MODEL
    sql = f"""
        WITH latency AS (
            SELECT {keys}, quantile_cont(latency_ms, 0.95) AS p95_latency_ms
            FROM ({rows}) GROUP BY {keys}
        ),
        agg AS (
            SELECT {keys}, count(*) AS n_items, avg(score) AS accuracy,
                   coalesce(stddev_samp(score), 0) AS score_sd, 1000 * avg(cost) AS cost_per_1k,
                   1000 * coalesce(stddev_samp(cost), 0) AS cost_sd_1k,
                   avg(agreement) AS consistency, sum(errors) / sum(calls) AS error_rate
            FROM per_item GROUP BY {keys}
        )
        SELECT agg.*, latency.p95_latency_ms,
               coalesce(consistency, 0) * (1 - error_rate) AS reliability,
               greatest(accuracy - {Z95} * score_sd / sqrt(n_items), 0) AS accuracy_lo,
               least(accuracy + {Z95} * score_sd / sqrt(n_items), 1) AS accuracy_hi,
               greatest(cost_per_1k - {Z95} * cost_sd_1k / sqrt(n_items), 0) AS cost_lo,
               cost_per_1k + {Z95} * cost_sd_1k / sqrt(n_items) AS cost_hi
        FROM agg LEFT JOIN latency USING ({keys})
        ORDER BY {keys}
    """
    return con.execute(sql, _params(dataset, split)).df()


def tradeoff_summary(
    con: Con, dataset: str, split: str | None, baseline: str | None
) -> dict[str, Any]:
    """Everything the Tradeoffs page needs from outcomes, from one pass over them: per-model
    stats, the oracle, and each model's accuracy share of `baseline`'s with its CI."""
    with _analytics(con, dataset, split) as duck:
        _per_item(duck, dataset, split)
        return {
            "stats": _stats(duck, dataset, split, by_task=False),
            "oracle": _oracle(duck),
            "paired": _paired(duck, baseline) if baseline else pd.DataFrame(),
        }


def _paired(con: Duck, baseline: str) -> pd.DataFrame:
    """Each model's accuracy as a share of `baseline`'s on the items both answered, with a 95%
    CI, and its cost saving. The CI is the delta method for a ratio of paired means: the
    standard error of mean(a) / mean(b) is sd(a_i - R b_i) / (sqrt(n) mean(b)), R the ratio."""
    return con.execute(
        f"""
        WITH pair AS (
            SELECT a.model, a.score AS a, b.score AS b, a.cost AS cost_a, b.cost AS cost_b
            FROM per_item a JOIN per_item b ON a.item_id = b.item_id AND b.model = $baseline
        ),
        means AS (
            SELECT model, avg(a) / nullif(avg(b), 0) AS ratio, avg(b) AS mb, count(*) AS n
            FROM pair GROUP BY model
        ),
        spread AS (
            SELECT p.model, coalesce(stddev_samp(a - m.ratio * b), 0) / (sqrt(m.n) * m.mb) AS se,
                   1 - avg(cost_a) / nullif(avg(cost_b), 0) AS savings
            FROM pair p JOIN means m USING (model) GROUP BY p.model, m.n, m.mb
        )
        SELECT model, n, ratio, ratio - {Z95} * se AS ratio_lo, ratio + {Z95} * se AS ratio_hi,
               savings
        FROM means JOIN spread USING (model) ORDER BY model
        """,
        {"baseline": baseline},
    ).df()


def oracle(con: Con, dataset: str, split: str | None) -> dict[str, float] | None:
    """The oracle router: per item the best score any model reached, at the cheapest such model."""
    with _analytics(con, dataset, split) as duck:
        _per_item(duck, dataset, split)
        return _oracle(duck)


def _oracle(con: Duck) -> dict[str, float] | None:
    sql = """
        WITH best AS (
            SELECT item_id, max(score) AS best FROM per_item GROUP BY item_id
        ),
        choice AS (
            SELECT p.item_id, b.best AS score, min(p.cost) AS cost
            FROM per_item p JOIN best b ON p.item_id = b.item_id AND p.score = b.best
            GROUP BY p.item_id, b.best
        )
        SELECT count(*) AS n_items, avg(score) AS accuracy,
               coalesce(stddev_samp(score), 0) AS score_sd, 1000 * avg(cost) AS cost_per_1k
        FROM choice
    """
    row = con.execute(sql).df().iloc[0]
    if not row["n_items"]:
        return None
    half = Z95 * row["score_sd"] / row["n_items"] ** 0.5
    return {
        "n_items": int(row["n_items"]),
        "accuracy": float(row["accuracy"]),
        "accuracy_lo": max(float(row["accuracy"] - half), 0.0),
        "accuracy_hi": min(float(row["accuracy"] + half), 1.0),
        "cost_per_1k": float(row["cost_per_1k"]),
    }


# Columns of `fitted_policies` read from each policy's `metrics` JSON: (column, path, scale).
_METRICS = [
    ("n_items", ("n",), 1),
    ("accuracy", ("accuracy",), 1),
    ("accuracy_lo", ("accuracy_ci", 0), 1),
    ("accuracy_hi", ("accuracy_ci", 1), 1),
    ("cost_per_1k", ("cost_per_request_usd",), 1000),
    ("reliability", ("reliability",), 1),
    ("p95_latency_ms", ("p95_latency_ms",), 1),
    ("kept", ("accuracy_vs_baseline",), 1),
    ("kept_lo", ("accuracy_vs_baseline_ci", 0), 1),
    ("kept_hi", ("accuracy_vs_baseline_ci", 1), 1),
    ("savings", ("savings_vs_baseline",), 1),
]


def _number(doc: Any, path: tuple[str | int, ...]) -> float | None:
    for step in path:
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return None
    return float(doc) if isinstance(doc, int | float) and not isinstance(doc, bool) else None


def fitted_policies(con: Con, dataset: str) -> pd.DataFrame:
    """Fitted policies of a dataset with their held-out metrics (from the `metrics` JSON)."""
    frame = con.execute(
        "SELECT policy_id, name, family, requirement, baseline, created_at, "
        "CAST(metrics AS VARCHAR) AS metrics FROM policies WHERE dataset = ? "
        "ORDER BY created_at DESC, name",
        [dataset],
    ).df()
    docs = [json.loads(m) if isinstance(m, str) else {} for m in frame.pop("metrics")]
    frame["split"] = [d.get("split") if isinstance(d, dict) else None for d in docs]
    for column, path, scale in _METRICS:
        values = [_number(d, path) for d in docs]
        frame[column] = pd.Series(
            [None if v is None else v * scale for v in values], index=frame.index, dtype=float
        )
    frame["n_items"] = frame["n_items"].astype("Int64")
    return frame


def policy_list(con: Con) -> pd.DataFrame:
    return con.execute(
        "SELECT policy_id, name, family, dataset, created_at FROM policies "
        "ORDER BY created_at DESC, name"
    ).df()


def policy_row(con: Con, policy_id: str) -> dict[str, Any] | None:
    """One policy: its columns, with `artifact` and `metrics` as JSON text."""
    cur = con.execute(
        "SELECT policy_id, name, family, dataset, data_hash, requirement, baseline, "
        "CAST(artifact AS VARCHAR) AS artifact, CAST(metrics AS VARCHAR) AS metrics, created_at "
        "FROM policies WHERE policy_id = ?",
        [policy_id],
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def items_for_replay(con: Con, dataset: str, split: str | None, limit: int) -> pd.DataFrame:
    """Up to `limit` items (a stable pseudo-random sample) with the text a policy routes on."""
    return con.execute(
        """
        SELECT item_id, task, coalesce(prompt, CAST(messages AS VARCHAR), '') AS prompt
        FROM items WHERE dataset = $dataset AND ($split IS NULL OR split = $split)
          AND item_id IN (SELECT item_id FROM outcomes WHERE dataset = $dataset)
        ORDER BY md5(item_id) LIMIT $limit
        """,
        {"dataset": dataset, "split": split, "limit": limit},
    ).df()


def decision_outcomes(
    con: Con, dataset: str, decisions: pd.DataFrame, baseline: str | None
) -> pd.DataFrame:
    """Join a replay's decisions (item_id, task, model) with the chosen and baseline outcomes.

    One row per decision: chosen model's mean score and cost, the baseline's, for the same item.
    """
    con.register("decisions", decisions[["item_id", "task", "model"]])
    try:
        return con.execute(
            """
            WITH per AS (
                SELECT item_id, model, avg(coalesce(score, 0)) AS score, avg(cost_usd) AS cost
                FROM outcomes WHERE dataset = $dataset
                  AND item_id IN (SELECT item_id FROM decisions)
                GROUP BY item_id, model
            )
            SELECT d.item_id, d.task, d.model, c.score, c.cost,
                   b.score AS baseline_score, b.cost AS baseline_cost
            FROM decisions d
            LEFT JOIN per c ON c.item_id = d.item_id AND c.model = d.model
            LEFT JOIN per b ON b.item_id = d.item_id AND b.model = $baseline
            """,
            {"dataset": dataset, "baseline": baseline},
        ).df()
    finally:
        con.unregister("decisions")


def item_spread(con: Con, dataset: str) -> pd.DataFrame:
    """Every item's score spread across models (one row per item; cached by the page, then
    filtered in memory by `page_of_items` at each interaction)."""
    with _analytics(con, dataset, None) as duck:
        return duck.execute(
            """
        WITH per AS (
            SELECT item_id, model, avg(coalesce(score, 0)) AS score
            FROM outcomes WHERE dataset = $dataset GROUP BY item_id, model
        )
        SELECT p.item_id, any_value(i.task) AS task, count(*) AS n_models,
               avg(p.score) AS mean_score, max(p.score) - min(p.score) AS disagreement
        FROM per p JOIN items i ON i.dataset = $dataset AND i.item_id = p.item_id
        GROUP BY p.item_id
        """,
            {"dataset": dataset},
        ).df()


def page_of_items(
    spread: pd.DataFrame, task: str | None, disagreement_only: bool, limit: int, offset: int
) -> pd.DataFrame:
    """Filter and page `item_spread`'s frame (in-memory DuckDB), most disputed first."""
    with duckdb.connect() as con:
        con.register("spread", spread)
        return con.execute(
            """
            SELECT *, count(*) OVER () AS total FROM spread
            WHERE ($task IS NULL OR task = $task) AND (NOT $only OR disagreement > 0)
            ORDER BY disagreement DESC, item_id
            LIMIT $limit OFFSET $offset
            """,
            {"task": task, "only": disagreement_only, "limit": limit, "offset": offset},
        ).df()


def item_details(con: Con, dataset: str, item_ids: list[str]) -> pd.DataFrame:
    return con.execute(
        """
        SELECT item_id, split, grader, reference,
               coalesce(prompt, CAST(messages AS VARCHAR)) AS prompt
        FROM items WHERE dataset = $dataset AND item_id = ANY($ids)
        """,
        {"dataset": dataset, "ids": item_ids},
    ).df()


def eval_responses(con: Con, dataset: str, item_ids: list[str]) -> pd.DataFrame:
    """Every model's first sample for the given items: response, score, error."""
    return con.execute(
        """
        SELECT item_id, model, response, score, error, cost_usd, latency_ms FROM (
            SELECT item_id, model, response, score, error, cost_usd, latency_ms,
                   row_number() OVER (PARTITION BY item_id, model
                                      ORDER BY sample, params_hash) AS nth
            FROM outcomes WHERE dataset = $dataset AND item_id = ANY($ids)
        ) first WHERE nth = 1
        ORDER BY item_id, model
        """,
        {"dataset": dataset, "ids": item_ids},
    ).df()
