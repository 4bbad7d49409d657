"""The dashboard's reads: each returns a small DataFrame, whatever the store size.

Each function takes an open store connection (the caller opens a short read-only one per query,
since the proxy writes the same store) and runs portable SQL on it, so a DuckDB file and a
PostgreSQL database answer alike. Where a page needs several figures from the same per-item
table, the store computes that table once (one pass over the outcomes) and the rest runs in an
in-memory DuckDB on its rows. Measured on 1M outcomes (benchmarks/README.md, Dashboard): the
store's own aggregation beats fetching the raw rows into DuckDB on both backends.

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
Z95 = 1.96
_DOUBLE = "DOUBLE PRECISION"

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
    f"CAST(greatest(count(*) FILTER (WHERE score = 1 AND NOT failed), "
    f"count(*) FILTER (WHERE score = 0 AND NOT failed)) AS {_DOUBLE})"
    " / nullif(count(*) FILTER (WHERE NOT failed), 0)"
)
_PER_ITEM = """
    SELECT model, min(task) AS task, item_id, avg(score) AS score, avg(cost_usd) AS cost,
           count(*) AS calls, count(*) FILTER (WHERE failed) AS errors, {agreement} AS agreement
    FROM o GROUP BY model, item_id
"""
_VOTES = f"""
    SELECT model, item_id, CAST(max(k) AS {_DOUBLE}) / CAST(sum(k) AS {_DOUBLE}) AS agreement
    FROM (
        SELECT model, item_id, round(score * 1000000) AS outcome, count(*) AS k
        FROM o WHERE NOT failed GROUP BY model, item_id, round(score * 1000000)
    ) v GROUP BY model, item_id
"""


def _params(dataset: str, split: str | None) -> dict[str, Any]:
    return {"dataset": dataset, "split": split}


def _per_item(con: Con, dataset: str, split: str | None) -> pd.DataFrame:
    """One row per (model, item): its task, mean score and cost, calls, errors and agreement.
    Computed by the store in one pass; every summary reads it."""
    row = con.execute(
        "SELECT coalesce(bool_and(score IN (0, 1) OR score IS NULL), true) FROM outcomes "
        "WHERE dataset = ?",
        [dataset],
    ).fetchone()
    if bool(row and row[0]):
        sql = f"WITH o AS ({_OUTCOMES}) {_PER_ITEM.format(agreement=_BINARY_AGREEMENT)}"
    else:
        sql = f"""
            WITH o AS ({_OUTCOMES}), per AS ({_PER_ITEM.format(agreement="NULL")}),
            votes AS ({_VOTES})
            SELECT per.model, per.task, per.item_id, per.score, per.cost, per.calls, per.errors,
                   votes.agreement
            FROM per LEFT JOIN votes ON votes.model = per.model AND votes.item_id = per.item_id
        """
    return con.execute(sql, _params(dataset, split)).df()


@contextmanager
def _local(**frames: pd.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with `frames` as tables, for the aggregations after the first."""
    with duckdb.connect() as local:
        local.execute("SET enable_progress_bar = false")
        for name, frame in frames.items():
            local.register(name, frame)
        yield local


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
    per_item = _per_item(con, dataset, split)
    latency = _latency(con, dataset, split, by_task=by_task)
    with _local(per_item=per_item, latency=latency) as local:
        return _stats(local, by_task=by_task)


def _latency(con: Con, dataset: str, split: str | None, *, by_task: bool) -> pd.DataFrame:
    keys = "model, task" if by_task else "model"
    # Per model alone the task is not needed: a semi-join on the split is cheaper than the join.
    rows = _OUTCOMES if by_task else _OUTCOMES_BY_MODEL
    return con.execute(
        f"""
        SELECT {keys}, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms
        FROM ({rows}) r GROUP BY {keys}
        """,
        _params(dataset, split),
    ).df()


def _stats(local: duckdb.DuckDBPyConnection, *, by_task: bool) -> pd.DataFrame:
    keys = "model, task" if by_task else "model"
    sql = f"""
        WITH agg AS (
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
    return local.execute(sql).df()


def tradeoff_summary(
    con: Con, dataset: str, split: str | None, baseline: str | None
) -> dict[str, Any]:
    """Everything the Tradeoffs page needs from outcomes, from one pass over them: per-model
    stats, the oracle, and each model's accuracy share of `baseline`'s with its CI."""
    per_item = _per_item(con, dataset, split)
    latency = _latency(con, dataset, split, by_task=False)
    with _local(per_item=per_item, latency=latency) as local:
        return {
            "stats": _stats(local, by_task=False),
            "oracle": _oracle(local),
            "paired": _paired(local, baseline) if baseline else pd.DataFrame(),
        }


def _paired(local: duckdb.DuckDBPyConnection, baseline: str) -> pd.DataFrame:
    """Each model's accuracy as a share of `baseline`'s on the items both answered, with a 95%
    CI, and its cost saving. The CI is the delta method for a ratio of paired means: the
    standard error of mean(a) / mean(b) is sd(a_i - R b_i) / (sqrt(n) mean(b)), R the ratio."""
    return local.execute(
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
    with _local(per_item=_per_item(con, dataset, split)) as local:
        return _oracle(local)


def _oracle(local: duckdb.DuckDBPyConnection) -> dict[str, float] | None:
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
    row = local.execute(sql).df().iloc[0]
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
    return con.execute(
        """
        WITH per AS (
            SELECT item_id, model, avg(coalesce(score, 0)) AS score
            FROM outcomes WHERE dataset = $dataset GROUP BY item_id, model
        )
        SELECT p.item_id, min(i.task) AS task, count(*) AS n_models,
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
