"""The dashboard's reads of the proxy's request log (`requests`), in portable SQL the store runs.

Timestamps are the log's naive UTC; `since` None means all time, `policy` None every policy.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from evals.store import Connection

Con = Connection

_REQUESTS = """
    SELECT * FROM requests
    WHERE ($since IS NULL OR created_at >= $since) AND ($policy IS NULL OR policy = $policy)
"""
_P95_LATENCY = "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)"


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
               {_P95_LATENCY} AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400) AS errors,
               coalesce(sum(fallbacks), 0) AS fallbacks,
               count(*) FILTER (WHERE fallbacks > 0) AS requests_with_fallback,
               min(created_at) AS first_at, max(created_at) AS last_at
        FROM ({_REQUESTS}) r
        """,
        _window(since, policy),
    )
    row = cur.fetchone()
    assert row is not None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def traffic_timeline(con: Con, since: Any, policy: str | None, bucket_s: int) -> pd.DataFrame:
    """Per time bucket (`bucket_s` wide, aligned to the epoch): requests, spend, baseline spend,
    savings, p95 latency and errors."""
    frame = con.execute(
        f"""
        SELECT floor(CAST(extract(epoch FROM created_at) AS DOUBLE PRECISION) / $bucket)
                   * $bucket AS bucket,
               count(*) AS requests,
               coalesce(sum(cost_usd), 0) AS spend_usd,
               coalesce(sum(baseline_cost_usd), 0) AS baseline_usd,
               coalesce(sum(baseline_cost_usd), 0) - coalesce(sum(cost_usd), 0) AS savings_usd,
               {_P95_LATENCY} AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400) AS errors,
               coalesce(sum(fallbacks), 0) AS fallbacks
        FROM ({_REQUESTS}) r GROUP BY 1 ORDER BY 1
        """,
        {**_window(since, policy), "bucket": int(bucket_s)},
    ).df()
    frame["bucket"] = pd.to_datetime(frame["bucket"], unit="s")
    return frame


def traffic_model_mix(con: Con, since: Any, policy: str | None) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT coalesce(model, '(none)') AS model, count(*) AS requests,
               coalesce(sum(cost_usd), 0) AS spend_usd,
               {_P95_LATENCY} AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400) AS errors
        FROM ({_REQUESTS}) r GROUP BY coalesce(model, '(none)') ORDER BY requests DESC
        """,
        _window(since, policy),
    ).df()


def traffic_recent_errors(con: Con, since: Any, policy: str | None, limit: int) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT created_at, policy, model, status, attempts, fallbacks, error
        FROM ({_REQUESTS}) r WHERE status >= 400 OR error IS NOT NULL
        ORDER BY created_at DESC LIMIT $limit
        """,
        {**_window(since, policy), "limit": limit},
    ).df()
