"""Client feedback: one `feedback` row per request (the last score wins) and, for a request a
policy routed, the outcome of the model that answered in `traffic-<policy>`.

A person's verdict on an answer beats a grader's: feedback overwrites that outcome, and a graded
pair (policies/loop/traffic.py) never overwrites feedback, whichever arrives first.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tradeoff.evals.store import Store
from tradeoff.policies.loop.traffic import ensure_names, traffic_dataset

__all__ = ["feedback_of", "record_feedback"]


def record_feedback(
    store: Store,
    request_id: str,
    score: float,
    *,
    thumbs: str | None,
    comment: str | None,
    request: dict[str, Any],
    at: datetime,
) -> None:
    """Upsert one request's feedback (last wins) and, if a policy routed it, its outcome.

    `request` holds the logged request's `policy`, `model`, `task`, `prompt` and `cost_usd`.
    """
    policy, model = request.get("policy"), request.get("model")
    with store.transaction() as con:
        con.execute(
            "INSERT INTO feedback (request_id, score, thumbs, comment, policy, model, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
            "score = excluded.score, thumbs = excluded.thumbs, comment = excluded.comment, "
            "updated_at = excluded.updated_at",
            [request_id, score, thumbs, comment, policy, model, at, at],
        )
        if not policy or not model:
            return
        dataset = traffic_dataset(policy)
        ensure_names(con, {dataset}, {model})
        meta = json.dumps({"source": "feedback"})
        con.execute(
            "INSERT INTO items (dataset, item_id, task, prompt, metadata) "
            "VALUES (?, ?, ?, ?, CAST(? AS JSON)) ON CONFLICT (dataset, item_id) DO NOTHING",
            [dataset, request_id, request.get("task") or "", request.get("prompt"), meta],
        )
        con.execute(
            "INSERT INTO outcomes (dataset, item_id, model, params_hash, sample, score, cost_usd, "
            "run_id) VALUES (?, ?, ?, '', 0, ?, ?, 'feedback') "
            "ON CONFLICT (dataset, item_id, model, params_hash, sample) DO UPDATE SET "
            "score = excluded.score, run_id = excluded.run_id",
            [dataset, request_id, model, score, request.get("cost_usd")],
        )


def feedback_of(store: Store, request_id: str) -> dict[str, Any] | None:
    """The recorded feedback of one request, or None."""
    with store.connect() as con:
        cur = con.execute(
            "SELECT request_id, score, thumbs, comment, created_at, updated_at FROM feedback "
            "WHERE request_id = ?",
            [request_id],
        )
        row = cur.fetchone()
        names = [d[0] for d in cur.description]
    return None if row is None else dict(zip(names, row, strict=True))
