"""The human review queue: what waits, a reviewer's verdict, and the counts status shows.

A request a policy routed to a reviewer (evals/reviewers.py) was answered with a draft and
queued in `reviews` by the proxy's request log (router/log). A verdict (`POST /v1/reviews/{id}`
or the dashboard's Review page, both through `record_verdict`) is a score in [0, 1] or
`correct` true/false, optionally with a corrected answer. It marks the review done and becomes
ground truth in `traffic-<policy>`, in one transaction:

- the draft model's outcome on the request is the verdict's score (`run_id` "review"): a
  person's label, like client feedback, which a grader's score never overwrites;
- the reviewer's outcome is what the request ends with after review: 1 when the draft was
  right or a corrected answer was given, else the verdict's score; at the review's price;
- a `loop_pairs` row with grader "review", so the live monitor counts the label like a graded
  shadow pair: r is the reviewer's outcome, s the baseline's score, which the verdict measures
  when the draft *is* the baseline's answer, else 1 (what agreement grading assumes of the
  baseline). A shadow pair already stored for the request stays (first label wins there).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from tradeoff.evals.errors import TradeoffError
from tradeoff.evals.store import Store
from tradeoff.evals.store.outcomes import insert_items, item_table, record_score
from tradeoff.policies.loop.traffic import PAIRS_LOCK, ensure_names, traffic_dataset

__all__ = [
    "REVIEW_GRADER",
    "BadVerdict",
    "ReviewDone",
    "ReviewNotFound",
    "Verdict",
    "parse_verdict",
    "pending_reviews",
    "record_verdict",
    "review_counts",
    "submit_verdict",
]

REVIEW_GRADER = "review"  # the `grader` of a verdict's pair, the `run_id` of its outcomes
MAX_ANSWER = 100_000
COLUMNS = (
    "review_id, request_id, policy, reviewer, draft_model, task, prompt, answer, "
    "review_cost_usd, draft_cost_usd, created_at, status, score, corrected_answer, reviewed_at"
)


class BadVerdict(TradeoffError):
    """A verdict body that is not `{"score": 0..1}` or `{"correct": bool}` (+ `answer`)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ReviewNotFound(TradeoffError):
    """No review with that id in the queue."""


class ReviewDone(TradeoffError):
    """The review already has a verdict."""


@dataclass(frozen=True)
class Verdict:
    score: float
    correct: bool | None = None
    answer: str | None = None  # the reviewer's corrected answer


def parse_verdict(body: Any) -> Verdict:
    """A verdict from a JSON body; BadVerdict naming the field that is wrong."""
    if not isinstance(body, dict):
        raise BadVerdict('the verdict must be a JSON object: {"score": 0..1} or {"correct": …}')
    score, correct, answer = body.get("score"), body.get("correct"), body.get("answer")
    if score is None and correct is None:
        raise BadVerdict("give 'score' (0 to 1) or 'correct' (true or false)", "score")
    if correct is not None and not isinstance(correct, bool):
        raise BadVerdict("'correct' must be true or false", "correct")
    if score is not None:
        ok = isinstance(score, int | float) and not isinstance(score, bool)
        if not ok or not math.isfinite(score) or not 0 <= score <= 1:
            raise BadVerdict("'score' must be a number from 0 to 1", "score")
        if correct is not None and (score == 1) != correct:
            raise BadVerdict("'score' and 'correct' disagree; give one of them", "correct")
    if answer is not None and (
        not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_ANSWER
    ):
        raise BadVerdict(
            f"'answer' must be the corrected answer, a non-empty string of at most {MAX_ANSWER} "
            "characters",
            "answer",
        )
    value = float(score) if score is not None else (1.0 if correct else 0.0)
    return Verdict(score=value, correct=correct, answer=answer)


def _review(con: Any, review_id: str) -> dict[str, Any] | None:
    cur = con.execute(
        f"SELECT {COLUMNS}, policy_version, epoch, policy_id, baseline FROM reviews "
        "WHERE review_id = ?",
        [review_id],
    )
    row = cur.fetchone()
    names = [d[0] for d in cur.description]
    return None if row is None else dict(zip(names, row, strict=True))


def record_verdict(
    store: Store,
    review_id: str,
    verdict: Verdict,
    *,
    at: datetime,
) -> dict[str, Any]:
    """Record a verdict (see the module docstring); the review as now stored. Raises
    ReviewNotFound, or ReviewDone for a second verdict."""
    with store.lock(PAIRS_LOCK), store.transaction() as con:
        review = _review(con, review_id)
        if review is None:
            raise ReviewNotFound(f"no review {review_id!r}; GET /v1/reviews lists what waits")
        if review["status"] == "done":
            raise ReviewDone(f"review {review_id!r} already has a verdict")
        con.execute(
            "UPDATE reviews SET status = 'done', score = ?, corrected_answer = ?, "
            "reviewed_at = ? WHERE review_id = ?",
            [verdict.score, verdict.answer, at, review_id],
        )
        review.update(status="done", score=verdict.score, corrected_answer=verdict.answer)
        review["reviewed_at"] = at
        if review["policy"]:
            _record_label(con, review, verdict, at)
    return _public(review)


def submit_verdict(store: Store, review_id: str, body: Any, *, at: datetime) -> dict[str, Any]:
    """A verdict's JSON body, checked and recorded: what `POST /v1/reviews/{id}` and the
    dashboard's Review page both run. Raises BadVerdict, ReviewNotFound or ReviewDone."""
    return record_verdict(store, review_id, parse_verdict(body), at=at)


def _record_label(con: Any, review: dict[str, Any], verdict: Verdict, at: datetime) -> None:
    dataset, baseline = traffic_dataset(review["policy"]), review.get("baseline")
    draft, reviewer, request_id = review["draft_model"], review["reviewer"], review["request_id"]
    reviewed = 1.0 if (verdict.answer is not None or verdict.score == 1.0) else verdict.score
    ensure_names(con, {dataset}, {m for m in (draft, reviewer, baseline) if m})
    item = {
        "dataset": dataset,
        "item_id": request_id,
        "task": review.get("task") or "",
        "prompt": review.get("prompt"),
        "metadata": json.dumps({"source": REVIEW_GRADER, "review_id": review["review_id"]}),
    }
    insert_items(con, item_table([item]))
    if draft:
        record_score(
            con, dataset, request_id, draft, verdict.score,
            cost_usd=review.get("draft_cost_usd"), run_id=REVIEW_GRADER,
        )  # fmt: skip
    record_score(
        con, dataset, request_id, reviewer, reviewed,
        cost_usd=review.get("review_cost_usd"), run_id=REVIEW_GRADER,
    )  # fmt: skip
    if not baseline:
        return
    baseline_score = verdict.score if draft == baseline else 1.0
    con.execute(
        "INSERT INTO loop_pairs (request_id, policy, version, epoch, policy_id, graded_at, "
        "grader, routed_model, baseline_model, routed_score, baseline_score, is_free, "
        "routed_cost_usd, baseline_cost_usd, shadow_cost_usd, task, prompt_sha256, seq) "
        "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false, ?, NULL, 0, ?, NULL, "
        "(SELECT coalesce(max(seq), 0) + 1 FROM loop_pairs) ON CONFLICT (request_id) DO NOTHING",
        [
            request_id, review["policy"], review.get("policy_version"), review.get("epoch") or 0,
            review.get("policy_id"), at, REVIEW_GRADER, reviewer, baseline, reviewed,
            baseline_score, _total(review), review.get("task"),
        ],
    )  # fmt: skip


def _total(review: dict[str, Any]) -> float | None:
    parts = [review.get("draft_cost_usd"), review.get("review_cost_usd")]
    return None if all(p is None for p in parts) else sum(p or 0.0 for p in parts)


def _public(review: dict[str, Any]) -> dict[str, Any]:
    """A review as the API and the dashboard show it (times in ISO 8601)."""
    hidden = ("policy_version", "epoch", "policy_id", "baseline")
    doc = {k: v for k, v in review.items() if k not in hidden}
    for key in ("created_at", "reviewed_at"):
        value = doc.get(key)
        doc[key] = value.isoformat() if isinstance(value, datetime) else value
    return {"object": "review", **doc}


def pending_reviews(
    store: Store, limit: int = 100, status: str = "pending"
) -> list[dict[str, Any]]:
    """Reviews with `status` (pending or done), oldest first."""
    with store.connect() as con:
        cur = con.execute(
            f"SELECT {COLUMNS} FROM reviews WHERE status = ? "
            "ORDER BY created_at, review_id LIMIT ?",
            [status, limit],
        )
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    return [_public(dict(zip(names, row, strict=True))) for row in rows]


def review_counts(con: Any, policy: str | None = None) -> dict[str, Any]:
    """Pending and done reviews, and the time to review of the done ones (median, p95, in
    seconds from the request to its verdict); of one policy or of all."""
    where, params = ("WHERE policy = ?", [policy]) if policy else ("", [])
    rows = con.execute(
        f"SELECT status, created_at, reviewed_at FROM reviews {where}", params
    ).fetchall()
    waits = [(r[2] - r[1]).total_seconds() for r in rows if r[0] == "done" and r[2] and r[1]]
    pending = sum(1 for r in rows if r[0] == "pending")
    return {
        "pending": pending,
        "done": len(rows) - pending,
        "time_to_review_s": {
            "median": float(np.median(waits)) if waits else None,
            "p95": float(np.percentile(waits, 95)) if waits else None,
        },
    }
