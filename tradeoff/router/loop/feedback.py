"""POST /v1/feedback (and GET /v1/feedback/{request_id}): a client's verdict on an answer.

    {"request_id": "req-...", "score": 0.8}          a score in [0, 1]
    {"request_id": "req-...", "thumbs": "up"}        or up (1) / down (0)
    {..., "comment": "wrong currency"}               optional

Recorded against the logged request (the id is in every answer's `x-tradeoff-request-id`
header): one row per request, the last score wins (policies/loop/traffic.py). An id the request
log does not know is a 404; a malformed body a 400; both in OpenAI's error shape. A client key
rates and reads only its own requests (another key's is a 404, as if unknown); an admin key, or
any caller with auth off, any request (router/keys/auth.py). The store write happens before the
200, off the event loop.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tradeoff.evals.errors import StoreError
from tradeoff.policies.loop.feedback import feedback_of, record_feedback
from tradeoff.policies.versions import now
from tradeoff.router.body import JsonReader
from tradeoff.router.errors import ProxyError, bad_request, store_unavailable
from tradeoff.router.metrics import family
from tradeoff.router.request import is_text, parse_json_body
from tradeoff.router.sse import ClientGone
from tradeoff.router.state import ProxyState

THUMBS = {"up": 1.0, "down": 0.0}
MAX_COMMENT = 10_000


def _parse(raw: bytes) -> tuple[str, float, str | None, str | None]:
    body = parse_json_body(raw)
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id or not is_text(request_id):
        raise bad_request(
            "'request_id' is required: the x-tradeoff-request-id header of the answer",
            "request_id",
        )
    score, thumbs = body.get("score"), body.get("thumbs")
    if thumbs is not None and (not isinstance(thumbs, str) or thumbs not in THUMBS):
        raise bad_request('\'thumbs\' must be "up" or "down"', "thumbs", "invalid_value")
    if score is None:
        if thumbs is None:
            raise bad_request("give 'score' (0 to 1) or 'thumbs' (up or down)", "score")
        score = THUMBS[thumbs]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise bad_request("'score' must be a number from 0 to 1", "score", "invalid_type")
    if not 0 <= score <= 1:
        raise bad_request("'score' must be from 0 to 1", "score", "invalid_value")
    comment = body.get("comment")
    if comment is not None and (
        not isinstance(comment, str) or len(comment) > MAX_COMMENT or not is_text(comment)
    ):
        raise bad_request(
            f"'comment' must be a string of at most {MAX_COMMENT} characters (valid Unicode: "
            "no lone surrogate)",
            "comment",
            "invalid_value",
        )
    return request_id, float(score), thumbs, comment


def _unknown(request_id: str) -> ProxyError:
    return ProxyError(
        404,
        f"no request {request_id!r} in the request log; send the x-tradeoff-request-id of an "
        "answer this proxy gave",
        param="request_id",
        code="request_not_found",
    )


def _no_feedback(request_id: str) -> ProxyError:
    return ProxyError(
        404,
        f"no feedback for request {request_id!r}",
        param="request_id",
        code="feedback_not_found",
    )


class Feedback:
    """The feedback routes of one proxy."""

    def __init__(self, state: ProxyState, read_body: JsonReader) -> None:
        self.state, self.read_body = state, read_body
        self.counts: Counter[str] = Counter()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/feedback", self.post, methods=["POST"]),
            Route("/v1/feedback/{request_id}", self.get, methods=["GET"]),
        ]

    async def post(self, request: Request) -> Response:
        state = self.state
        try:
            caller = state.keys.caller(request.headers)
            raw = await self.read_body(request)
            request_id, score, thumbs, comment = _parse(raw)
            try:
                logged = await asyncio.to_thread(state.request_log.find, request_id)
                if logged is None or not caller.owns(logged.get("key_name")):
                    raise _unknown(request_id)
                await asyncio.to_thread(
                    record_feedback,
                    state.request_log.store,
                    request_id,
                    score,
                    thumbs=thumbs,
                    comment=comment,
                    request=logged,
                    at=now(),
                )
            except StoreError as exc:
                raise store_unavailable(exc) from None
        except ProxyError as exc:
            self.counts["rejected" if exc.status < 500 else "failed"] += 1
            return exc.response()
        except ClientGone:
            return Response(status_code=499)  # the client left mid-upload: nothing to record
        self.counts["recorded"] += 1
        return JSONResponse(
            {
                "object": "feedback",
                "request_id": request_id,
                "score": score,
                "thumbs": thumbs,
                "comment": comment,
            }
        )

    async def get(self, request: Request) -> Response:
        state = self.state
        request_id = request.path_params["request_id"]
        try:
            caller = state.keys.caller(request.headers)
            try:
                if not caller.admin:
                    logged = await asyncio.to_thread(state.request_log.find, request_id)
                    if logged is None or not caller.owns(logged.get("key_name")):
                        raise _no_feedback(request_id)
                found = await asyncio.to_thread(feedback_of, state.request_log.store, request_id)
            except StoreError as exc:
                raise store_unavailable(exc) from None
            if found is None:
                raise _no_feedback(request_id)
        except ProxyError as exc:
            return exc.response()
        doc: dict[str, Any] = {"object": "feedback", **found}
        for key in ("created_at", "updated_at"):
            doc[key] = doc[key].isoformat() if doc.get(key) else None
        return JSONResponse(doc)

    def render(self) -> list[str]:
        outcomes = [((("outcome", k),), v) for k, v in sorted(self.counts.items())]
        return family(
            "tradeoff_feedback_total", "counter", "Feedback requests by outcome.", outcomes
        )
