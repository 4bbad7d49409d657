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
from tradeoff.evals.store.outcomes import insert_items, item_table, record_score
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
        item = {
            "dataset": dataset,
            "item_id": request_id,
            "task": request.get("task") or "",
            "prompt": request.get("prompt"),
            "metadata": json.dumps({"source": "feedback"}),
        }
        insert_items(con, item_table([item]))
        record_score(
            con,
            dataset,
            request_id,
            model,
            score,
            cost_usd=request.get("cost_usd"),
            run_id="feedback",
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
