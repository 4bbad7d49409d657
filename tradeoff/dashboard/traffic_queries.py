"""The dashboard's reads of the proxy's request log (`requests`), in portable SQL the store runs.

Timestamps are the log's naive UTC; `since` None means all time. `policy` filters by policy
name, `PASS_THROUGH` keeps the requests that named a model (no policy), None keeps all.

Savings count only requests that have a baseline: both `cost_usd` and `baseline_cost_usd`
known (what the baseline would have charged for the same tokens). Pass-through requests have no
baseline and are counted apart, never as savings nor as losses. Errors are split by whose they
are: a client's (4xx: a bad request, an unknown model, a client that left, 499) and an
upstream's (5xx: every model of the plan failed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from tradeoff.evals.store import Connection

Con = Connection
PASS_THROUGH = "(pass-through)"

_REQUESTS = """
    SELECT * FROM requests
    WHERE ($since IS NULL OR created_at >= $since)
      AND (CASE WHEN $pass THEN policy IS NULL
                WHEN $policy IS NULL THEN true ELSE policy = $policy END)
"""
_P95_LATENCY = "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)"
_WITH_BASELINE = "cost_usd IS NOT NULL AND baseline_cost_usd IS NOT NULL"
# The sums every summary shares: volume, spend, savings over requests with a baseline, errors.
_SUMS = f"""
    count(*) AS requests,
    count(*) FILTER (WHERE policy IS NULL) AS pass_through,
    coalesce(sum(cost_usd), 0) AS spend_usd,
    coalesce(sum(cost_usd) FILTER (WHERE policy IS NULL), 0) AS pass_through_usd,
    count(*) FILTER (WHERE {_WITH_BASELINE}) AS with_baseline,
    coalesce(sum(cost_usd) FILTER (WHERE {_WITH_BASELINE}), 0) AS routed_usd,
    coalesce(sum(baseline_cost_usd) FILTER (WHERE {_WITH_BASELINE}), 0) AS baseline_usd,
    count(*) FILTER (WHERE status >= 400 AND status < 500) AS client_errors,
    count(*) FILTER (WHERE status >= 500) AS upstream_failures,
    coalesce(sum(fallbacks), 0) AS fallbacks,
    count(*) FILTER (WHERE cost_estimated) AS cost_estimated
"""


def _window(since: Any, policy: str | None) -> dict[str, Any]:
    pass_through = policy == PASS_THROUGH
    return {"since": since, "policy": None if pass_through else policy, "pass": pass_through}


def traffic_policies(con: Con) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT policy FROM requests WHERE policy IS NOT NULL ORDER BY policy"
    ).fetchall()
    return [r[0] for r in rows]


def traffic_totals(con: Con, since: Any, policy: str | None) -> dict[str, Any]:
    """Requests, spend, savings over requests with a baseline, pass-through apart, p95 latency,
    client errors, upstream failures and fallbacks."""
    cur = con.execute(
        f"""
        SELECT {_SUMS}, {_P95_LATENCY} AS p95_latency_ms,
               count(*) FILTER (WHERE fallbacks > 0) AS requests_with_fallback,
               min(created_at) AS first_at, max(created_at) AS last_at
        FROM ({_REQUESTS}) r
        """,
        _window(since, policy),
    )
    row = cur.fetchone()
    assert row is not None
    out = dict(zip([d[0] for d in cur.description], row, strict=True))
    out["saved_usd"] = out["baseline_usd"] - out["routed_usd"]
    out["savings"] = 1 - out["routed_usd"] / out["baseline_usd"] if out["baseline_usd"] else None
    return out


def buckets(start: datetime, end: datetime, bucket_s: int) -> pd.DatetimeIndex:
    """Every bucket start from `start` to `end` (naive UTC), aligned to the epoch like the
    query's."""
    first, last = _epoch(start, bucket_s), _epoch(end, bucket_s)
    return pd.to_datetime(range(first, last + 1, bucket_s), unit="s")


def _epoch(moment: datetime, bucket_s: int) -> int:
    seconds = (moment - datetime(1970, 1, 1)).total_seconds()
    return int(seconds // bucket_s * bucket_s)


def traffic_timeline(
    con: Con, since: Any, policy: str | None, bucket_s: int, until: datetime | None = None
) -> pd.DataFrame:
    """Per time bucket (`bucket_s` wide, aligned to the epoch) from `since` (else the first
    request) to `until` (else the last): every bucket, empty ones as zero requests and spend (a
    p95 latency stays empty: there is none). Savings as in `traffic_totals`."""
    frame = con.execute(
        f"""
        SELECT floor(CAST(extract(epoch FROM created_at) AS DOUBLE PRECISION) / $bucket)
                   * $bucket AS bucket,
               {_SUMS}, {_P95_LATENCY} AS p95_latency_ms
        FROM ({_REQUESTS}) r GROUP BY 1 ORDER BY 1
        """,
        {**_window(since, policy), "bucket": int(bucket_s)},
    ).df()
    frame["bucket"] = pd.to_datetime(frame["bucket"], unit="s")
    if frame.empty and (since is None or until is None):
        return frame
    start = since if since is not None else frame["bucket"].min().to_pydatetime()
    end = until if until is not None else frame["bucket"].max().to_pydatetime()
    full = pd.DataFrame({"bucket": buckets(start, end, bucket_s)})
    frame = full.merge(frame, on="bucket", how="left")
    counts = [c for c in frame.columns if c not in ("bucket", "p95_latency_ms")]
    frame[counts] = frame[counts].fillna(0)
    frame["saved_usd"] = frame["baseline_usd"] - frame["routed_usd"]
    frame["routed"] = frame["requests"] - frame["pass_through"]
    return frame


def traffic_model_mix(con: Con, since: Any, policy: str | None) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT coalesce(model, '(no model called)') AS model, count(*) AS requests,
               count(*) FILTER (WHERE policy IS NULL) AS pass_through,
               coalesce(sum(cost_usd), 0) AS spend_usd,
               {_P95_LATENCY} AS p95_latency_ms,
               count(*) FILTER (WHERE status >= 400 AND status < 500) AS client_errors,
               count(*) FILTER (WHERE status >= 500) AS upstream_failures
        FROM ({_REQUESTS}) r GROUP BY coalesce(model, '(no model called)') ORDER BY requests DESC
        """,
        _window(since, policy),
    ).df()


# The request log browser's columns, in order.
_LOG_COLUMNS = (
    "created_at, request_id, policy, requested_model, model, task, status, route_reason, "
    "attempts, fallbacks, prompt_tokens, completion_tokens, cost_usd, cost_estimated, "
    "baseline_cost_usd, latency_ms, protocol, session, error"
)
STATUS_CLASSES = {
    "any status": (0, 1000),
    "answered (2xx)": (200, 300),
    "client errors (4xx)": (400, 500),
    "upstream failures (5xx)": (500, 600),
}


def request_filters(con: Con, since: Any) -> dict[str, list[str]]:
    """The values the request log browser offers: models and tasks seen in the window."""
    out = {}
    for column in ("model", "task"):
        rows = con.execute(
            f"SELECT DISTINCT {column} FROM requests WHERE {column} IS NOT NULL "
            "AND ($since IS NULL OR created_at >= $since) ORDER BY 1",
            {"since": since},
        ).fetchall()
        out[column] = [r[0] for r in rows]
    return out


def request_page(
    con: Con,
    since: Any,
    policy: str | None,
    model: str | None,
    task: str | None,
    status: str,
    limit: int,
    offset: int,
) -> tuple[pd.DataFrame, int]:
    """One page of the request log, newest first, and how many rows match."""
    low, high = STATUS_CLASSES[status]
    where = f"""
        FROM ({_REQUESTS}) r
        WHERE ($model IS NULL OR model = $model) AND ($task IS NULL OR task = $task)
          AND status >= $low AND status < $high
    """
    params = {**_window(since, policy), "model": model, "task": task, "low": low, "high": high}
    row = con.execute(f"SELECT count(*) {where}", params).fetchone()
    total = int(row[0]) if row else 0
    frame = con.execute(
        f"SELECT {_LOG_COLUMNS} {where} ORDER BY created_at DESC, request_id "
        "LIMIT $limit OFFSET $offset",
        {**params, "limit": limit, "offset": offset},
    ).df()
    return frame, total


def recent_errors(con: Con, since: Any, policy: str | None, limit: int) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT created_at, policy, model, status, attempts, fallbacks, error
        FROM ({_REQUESTS}) r WHERE status >= 400 OR error IS NOT NULL
        ORDER BY created_at DESC LIMIT $limit
        """,
        {**_window(since, policy), "limit": limit},
    ).df()
