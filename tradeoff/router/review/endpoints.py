"""The review API: what waits for a person, and their verdicts.

    GET  /v1/reviews?status=pending&limit=100     the queue, oldest first (or status=done)
    POST /v1/reviews/{review_id}                  a verdict:
         {"score": 0.0..1.0}  or  {"correct": true|false}, optionally "answer": "corrected text"

A verdict is answered 200 with the review as stored; an unknown id is a 404, a second verdict
a 409, a malformed body a 400, all in OpenAI's error shape. The store write (the review, the
traffic outcomes, the monitor's pair: policies/loop/reviews.py) happens before the 200, off the
event loop. Both routes take an admin key (reviewers act for the operator, not for a client).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tradeoff.evals.errors import StoreError
from tradeoff.policies.loop.reviews import (
    BadVerdict,
    ReviewDone,
    ReviewNotFound,
    pending_reviews,
    review_counts,
    submit_verdict,
)
from tradeoff.policies.versions import now
from tradeoff.router.body import JsonReader
from tradeoff.router.errors import ProxyError, bad_request, store_unavailable
from tradeoff.router.metrics import family
from tradeoff.router.request import parse_json_body
from tradeoff.router.sse import ClientGone
from tradeoff.router.state import ProxyState

__all__ = ["Reviews"]

MAX_LIMIT = 1000


class Reviews:
    """The review routes of one proxy, and the review families on /metrics."""

    def __init__(self, state: ProxyState, read_body: JsonReader) -> None:
        self.state, self.read_body = state, read_body
        self.verdicts: Counter[str] = Counter()
        self.snapshot: dict[str, Any] | None = None  # the store's counts at the last scrape

    def routes(self) -> list[Route]:
        return [
            Route("/v1/reviews", self.queue, methods=["GET"]),
            Route("/v1/reviews/{review_id}", self.post, methods=["POST"]),
        ]

    async def queue(self, request: Request) -> Response:
        state = self.state
        try:
            state.keys.admin(request.headers)
            status = request.query_params.get("status", "pending")
            if status not in ("pending", "done"):
                raise bad_request("'status' must be pending or done", "status", "invalid_value")
            raw_limit = request.query_params.get("limit", "100")
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
                raise bad_request(
                    f"'limit' must be a whole number from 1 to {MAX_LIMIT}",
                    "limit",
                    "invalid_value",
                )
            store = state.request_log.store
            try:
                found = await asyncio.to_thread(pending_reviews, store, int(raw_limit), status)
            except StoreError as exc:
                raise store_unavailable(exc) from None
        except ProxyError as exc:
            return exc.response()
        return JSONResponse({"object": "list", "data": found})

    async def post(self, request: Request) -> Response:
        state = self.state
        review_id = request.path_params["review_id"]
        try:
            state.keys.admin(request.headers)
            body = parse_json_body(await self.read_body(request))
            store = state.request_log.store
            try:
                review = await asyncio.to_thread(submit_verdict, store, review_id, body, at=now())
            except BadVerdict as exc:
                raise bad_request(str(exc), exc.param, "invalid_verdict") from None
            except ReviewNotFound as exc:
                raise ProxyError(
                    404, str(exc), param="review_id", code="review_not_found"
                ) from None
            except ReviewDone as exc:
                raise ProxyError(409, str(exc), param="review_id", code="review_done") from None
            except StoreError as exc:
                raise store_unavailable(exc) from None
        except ProxyError as exc:
            self.verdicts["rejected" if exc.status < 500 else "failed"] += 1
            return exc.response()
        except ClientGone:
            return Response(status_code=499)
        self.verdicts["recorded"] += 1
        return JSONResponse(review)

    # -- /metrics ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the queue's counts from the store (blocking: the metrics route runs it in a
        thread before rendering); a store that cannot answer keeps the last counts."""
        try:
            with self.state.request_log.store.connect() as con:
                self.snapshot = review_counts(con)
        except StoreError:
            pass

    def render(self) -> list[str]:
        lines = family(
            "tradeoff_review_verdicts_total", "counter", "Review verdicts posted, by outcome.",
            [((("outcome", k),), v) for k, v in sorted(self.verdicts.items())],
        )  # fmt: skip
        snap = self.snapshot
        if snap is None:
            return lines
        waits = snap["time_to_review_s"]
        lines += family(
            "tradeoff_reviews", "gauge", "Reviews in the store's queue, by status.",
            [((("status", "pending"),), snap["pending"]), ((("status", "done"),), snap["done"])],
        )  # fmt: skip
        quantiles = [
            ((("quantile", q),), waits[k]) for q, k in (("0.5", "median"), ("0.95", "p95"))
        ]
        lines += family(
            "tradeoff_review_time_seconds", "gauge",
            "Time from a request to its review's verdict (median and p95 of the done reviews).",
            [(key, value) for key, value in quantiles if value is not None],
        )  # fmt: skip
        return lines
