"""The dashboard's reads of the proxy's request log (`requests`), aggregated in DuckDB.

Timestamps are the log's naive UTC; `since` None means all time, `policy` None every policy.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

Con = duckdb.DuckDBPyConnection

_REQUESTS = """
    SELECT * FROM requests
    WHERE ($since IS NULL OR created_at >= $since) AND ($policy IS NULL OR policy = $policy)
"""


def _window(since: Any, policy: str | None) -> dict[str, Any]:
    return {"since": since, "policy": policy}


def traffic_policies(con: Con) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT policy FROM requests WHERE policy IS NOT NULL ORDER BY policy"
    ).fetchall()
    return [r[0] for r in rows]


def traffic_totals(con: Con, since: Any, policy: str | None) -> dict[str, Any]:
    """Requests, spend, savings against the baseline, p95 latency, errors and fallbacks."""
    cur = con.execute(
        f"""
        SELECT count(*) AS requests, coalesce(sum(cost_usd), 0) AS spend_usd,
               coalesce(sum(baseline_cost_usd), 0) AS baseline_usd,
               quantile_cont(latency_ms, 0.95) AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400) AS errors,
               coalesce(sum(fallbacks), 0) AS fallbacks,
               count(*) FILTER (WHERE fallbacks > 0) AS requests_with_fallback,
               min(created_at) AS first_at, max(created_at) AS last_at
        FROM ({_REQUESTS})
        """,
        _window(since, policy),
    )
    row = cur.fetchone()
    assert row is not None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def traffic_timeline(con: Con, since: Any, policy: str | None, bucket_s: int) -> pd.DataFrame:
    """Per time bucket: requests, spend, baseline spend, savings, p95 latency and errors."""
    return con.execute(
        f"""
        SELECT time_bucket(to_seconds($bucket), created_at) AS bucket, count(*) AS requests,
               coalesce(sum(cost_usd), 0) AS spend_usd,
               coalesce(sum(baseline_cost_usd), 0) AS baseline_usd,
               coalesce(sum(baseline_cost_usd), 0) - coalesce(sum(cost_usd), 0) AS savings_usd,
               quantile_cont(latency_ms, 0.95) AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400) AS errors,
               coalesce(sum(fallbacks), 0) AS fallbacks
        FROM ({_REQUESTS}) GROUP BY bucket ORDER BY bucket
        """,
        {**_window(since, policy), "bucket": bucket_s},
    ).df()


def traffic_model_mix(con: Con, since: Any, policy: str | None) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT coalesce(model, '(none)') AS model, count(*) AS requests,
               coalesce(sum(cost_usd), 0) AS spend_usd,
               quantile_cont(latency_ms, 0.95) AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400) AS errors
        FROM ({_REQUESTS}) GROUP BY ALL ORDER BY requests DESC
        """,
        _window(since, policy),
    ).df()


def traffic_recent_errors(con: Con, since: Any, policy: str | None, limit: int) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT created_at, policy, model, status, attempts, fallbacks, error
        FROM ({_REQUESTS}) WHERE status >= 400 OR error IS NOT NULL
        ORDER BY created_at DESC LIMIT $limit
        """,
        {**_window(since, policy), "limit": limit},
    ).df()
