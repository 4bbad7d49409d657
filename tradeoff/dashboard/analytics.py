"""The dashboard's heavy reads: passes over every outcome of a dataset, in DuckDB SQL.

On a DuckDB store they run on the file; a PostgreSQL store ships the dataset's outcome and item
rows to an in-memory DuckDB (one COPY each, `_analytics`) and they run there. Measured on 1M
outcomes (benchmarks/README.md, Dashboard), that is ~2-3x faster than PostgreSQL aggregating
them itself. Every pass is over one item set (`dashboard.itemsets.ItemSet`): the temp table
`chosen` holds its items, and every figure below is computed on those items only.

Definitions, per model (and per task), over the chosen items:
- accuracy: mean over items of the item's mean score across samples; an error scores 0.
- cost per 1k requests: 1000 x mean `cost_usd` per call.
- consistency: mean over items of the share of an item's non-error samples equal to its most
  frequent score; 1.0 when each item has one sample.
- reliability: consistency x (1 - error rate over calls), as `evals.reliability` defines it.
- CIs are 95% normal intervals over items (mean +- 1.96 sd / sqrt(n)); a share of the
  baseline's accuracy gets the paired delta-method interval (`_paired`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd

from tradeoff.dashboard.itemsets import ItemSet, hash_members
from tradeoff.evals.store import Connection

__all__ = ["Z95", "item_spread", "model_stats", "oracle", "tradeoff_summary"]

Con = Connection
Duck = duckdb.DuckDBPyConnection
Z95 = 1.96

# What a server store ships to DuckDB for the analytics of one dataset (and named split): only
# the columns they read; an error's text is reduced to '' (`error IS NOT NULL` keeps its meaning).
_IN_SPLIT = " AND ($split IS NULL OR split = $split)"
_ANALYTIC_ROWS = {
    "outcomes": "SELECT item_id, model, score, CASE WHEN error IS NULL THEN NULL ELSE '' END "
    "AS error, cost_usd, latency_ms FROM outcomes WHERE dataset = $dataset AND ($split IS NULL "
    f"OR item_id IN (SELECT item_id FROM items WHERE dataset = $dataset{_IN_SPLIT}))",
    "items": f"SELECT item_id, task, split FROM items WHERE dataset = $dataset{_IN_SPLIT}",
}
# The item spread reads scores alone: half the columns to ship.
_SPREAD_ROWS = {
    "outcomes": "SELECT item_id, model, score FROM outcomes WHERE dataset = $dataset",
    "items": "SELECT item_id, task FROM items WHERE dataset = $dataset",
}


@contextmanager
def _analytics(
    con: Con, dataset: str, items: ItemSet | None, rows: dict[str, str] = _ANALYTIC_ROWS
) -> Iterator[Duck]:
    """A DuckDB connection holding `dataset`'s outcomes and items, with the temp table `chosen`
    (item_id, task) of the item set (None: no item set needed): the store's own connection
    when the store is a DuckDB file, else an in-memory DuckDB loaded from the store (one COPY
    per table)."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        if items is not None:
            _choose(con, dataset, items)
        yield con
        return
    literal = "'" + dataset.replace("'", "''") + "'"
    with duckdb.connect() as local:
        local.execute("SET enable_progress_bar = false")
        for table, sql in rows.items():
            split = None if items is None else items.split
            rows = con.fetch_arrow(sql, {"dataset": dataset, "split": split})  # type: ignore[attr-defined]
            local.register(f"{table}_rows", rows)
            local.execute(
                f"CREATE TEMP VIEW {table} AS SELECT {literal} AS dataset, * FROM {table}_rows"
            )
        if items is not None:
            _choose(local, dataset, items)
        yield local


def _choose(con: Duck, dataset: str, items: ItemSet) -> None:
    """TEMP TABLE chosen: the item set's items (a hash set is drawn in Python, as fit draws it)."""
    if not items.is_hash:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE chosen AS SELECT item_id, task FROM items "
            f"WHERE dataset = $dataset{_IN_SPLIT}",
            {"dataset": dataset, "split": items.split},
        )
        return
    every = con.execute("SELECT item_id, task FROM items WHERE dataset = ?", [dataset]).df()
    picked = every[hash_members(every["item_id"], items)]  # noqa: F841 (read by the SQL below)
    con.execute("CREATE OR REPLACE TEMP TABLE chosen AS SELECT item_id, task FROM picked")


# The outcomes of one dataset on the chosen items, with their task.
_OUTCOMES = """
    SELECT o.model, o.item_id, i.task, coalesce(o.score, 0) AS score,
           (o.error IS NOT NULL) AS failed, o.cost_usd, o.latency_ms
    FROM outcomes o JOIN chosen i ON i.item_id = o.item_id
    WHERE o.dataset = $dataset
"""
# Per model alone the task is not needed: a semi-join on the chosen items is cheaper.
_OUTCOMES_BY_MODEL = """
    SELECT model, latency_ms FROM outcomes
    WHERE dataset = $dataset AND item_id IN (SELECT item_id FROM chosen)
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


def _per_item(con: Duck, dataset: str) -> None:
    """Materialise TEMP TABLE per_item: one row per (model, chosen item) with its mean score and
    cost, calls, errors and agreement. Built once per connection; every summary reads it."""
    params = {"dataset": dataset}
    row = con.execute(
        "SELECT coalesce(bool_and(score IN (0, 1) OR score IS NULL), true) FROM outcomes "
        "WHERE dataset = $dataset",
        params,
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


def model_stats(con: Con, dataset: str, items: ItemSet, *, by_task: bool) -> pd.DataFrame:
    """Accuracy, cost, latency and reliability per model (and per task when `by_task`)."""
    with _analytics(con, dataset, items) as duck:
        _per_item(duck, dataset)
        return _stats(duck, dataset, by_task=by_task)


def _stats(con: Duck, dataset: str, *, by_task: bool) -> pd.DataFrame:
    keys = "model, task" if by_task else "model"
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
    return con.execute(sql, {"dataset": dataset}).df()


def tradeoff_summary(
    con: Con, dataset: str, items: ItemSet, baseline: str | None
) -> dict[str, Any]:
    """Everything the Tradeoffs page needs from outcomes, from one pass over them: per-model
    stats, the oracle, and each model's accuracy share of `baseline`'s with its CI."""
    with _analytics(con, dataset, items) as duck:
        _per_item(duck, dataset)
        return {
            "stats": _stats(duck, dataset, by_task=False),
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


def oracle(con: Con, dataset: str, items: ItemSet) -> dict[str, float] | None:
    """The oracle router: per item the best score any model reached, at the cheapest such model."""
    with _analytics(con, dataset, items) as duck:
        _per_item(duck, dataset)
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


def item_spread(con: Con, dataset: str) -> pd.DataFrame:
    """Every item's score spread across models (one row per item; cached by the page, then
    filtered in memory by `queries.page_of_items` at each interaction)."""
    with _analytics(con, dataset, None, _SPREAD_ROWS) as duck:
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
