"""Spend per client key, read from the store: what `tradeoff status` and the dashboard show.

`key_spend(store)` is the library function for both (any backend, no proxy needed):

```python
from tradeoff.evals.store import open_store
from tradeoff.router.keys.usage import key_spend

for key in key_spend(open_store("postgresql://...", create=False)):
    print(key["name"], key["spent_usd"], key["budget_usd"])
```

Each entry: `name`, `rpm`, `budget_usd`, `budget_period`, `period_start` (naive UTC),
`spent_usd` (the period's spend: the sum of `cost_usd` over the request log's rows of that key
since the period started, so each request counts exactly once), `requests` (rows in the
period), `refused` (of those, the 429s its limits answered: no upstream was tried),
`last_minute` (requests this minute that reached an upstream), `in_flight_usd` (reservations of requests still running on PostgreSQL replicas; 0 on a
DuckDB store), and `budget_left_usd` (None without a budget). Keys come from the `api_keys`
table, which every `tradeoff serve --keys` writes at start (names and limits, never secrets).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tradeoff.evals.store import Store
from tradeoff.router.keys.keyfile import NUSD_PER_USD, KeySpec, minute_start, period_start, utcnow
from tradeoff.router.log.request_log import key_counts

__all__ = ["key_spend", "period_counts", "publish_keys"]


def publish_keys(store: Store, keys: list[KeySpec]) -> None:
    """Record the keys' names and limits (not their secrets) for status and the dashboard."""
    with store.transaction(threads=1) as con:
        for key in keys:
            con.execute(
                "INSERT INTO api_keys (name, rpm, budget_usd, budget_period, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET rpm = excluded.rpm, "
                "budget_usd = excluded.budget_usd, budget_period = excluded.budget_period, "
                "updated_at = excluded.updated_at",
                [key.name, key.rpm, key.budget_usd, key.budget_period, utcnow()],
            )


def period_counts(
    store: Store, name: str, period: str, now: datetime | None = None
) -> tuple[float, int, int, int]:
    """(spent USD, requests, refused, requests this minute) of key `name` in its current
    period, from the request log."""
    now = now or utcnow()
    return key_counts(store, name, period_start(period, now), minute_start(now))


def key_spend(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every configured key's spend in its current budget period (see the module docstring)."""
    now = now or utcnow()
    with store.connect(read_only=True, threads=1) as con:
        keys = con.execute(
            "SELECT name, rpm, budget_usd, budget_period FROM api_keys ORDER BY name"
        ).fetchall()
        held = dict(
            con.execute(
                "SELECT name, sum(reserved_nusd) FROM key_usage WHERE reserved_nusd > 0 "
                "GROUP BY name"
            ).fetchall()
        )
    out = []
    for name, rpm, budget, period in keys:
        spent, requests, refused, last_minute = period_counts(store, name, period, now)
        out.append(
            {
                "name": name,
                "rpm": rpm,
                "budget_usd": budget,
                "budget_period": period,
                "period_start": period_start(period, now),
                "spent_usd": spent,
                "requests": requests,
                "refused": refused,
                "last_minute": last_minute,
                "in_flight_usd": float(held.get(name) or 0) / NUSD_PER_USD,
                "budget_left_usd": None if budget is None else max(0.0, budget - spent),
            }
        )
    return out
