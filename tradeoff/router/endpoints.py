"""The proxy's route table: an endpoint per client protocol, the models, health, metrics and the
loop's status (the feedback routes are router/loop/feedback.py, the review routes
router/review/endpoints.py).

Every route checks its caller once, through `state.keys` (router/keys/auth.py): the model APIs
and `/v1/models` take any key, `/metrics` and `/tradeoff/status` an admin key, `/health` none.
Errors a route raises are answered by router/boundary.py in the route's error shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tradeoff.router.body import JsonReader
from tradeoff.router.call import CLIENT_CLOSED, Call
from tradeoff.router.errors import ProxyError, internal_error
from tradeoff.router.loop.feedback import Feedback
from tradeoff.router.pipeline import handle
from tradeoff.router.protocols import (
    AnthropicProtocol,
    ChatProtocol,
    CompletionsProtocol,
    EmbeddingsProtocol,
    Protocol,
    ResponsesProtocol,
)
from tradeoff.router.protocols.count_tokens import count_tokens_endpoint
from tradeoff.router.request import unknown_model
from tradeoff.router.review.endpoints import Reviews
from tradeoff.router.sse import ClientGone
from tradeoff.router.state import ProxyState
from tradeoff.router.telemetry import start_request

__all__ = ["proxy_routes"]

log = logging.getLogger("tradeoff.router")
Endpoint = Callable[[Request], Awaitable[Response]]


def proxy_routes(
    state: ProxyState, read_json: JsonReader, feedback: Feedback, reviews: Reviews
) -> list[Route]:
    """Every route the proxy serves (the 404 message lists them from here)."""

    def serve(make: Callable[[], Protocol]) -> Endpoint:
        return protocol_endpoint(state, read_json, make)

    chat = serve(ChatProtocol)
    return [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/v1/responses", serve(ResponsesProtocol), methods=["POST"]),
        Route("/v1/messages", serve(AnthropicProtocol), methods=["POST"]),
        Route(
            "/v1/messages/count_tokens", count_tokens_endpoint(state, read_json), methods=["POST"]
        ),
        Route("/v1/embeddings", serve(EmbeddingsProtocol), methods=["POST"]),
        Route("/v1/completions", serve(CompletionsProtocol), methods=["POST"]),
        Route("/v1/models", partial(models, state), methods=["GET"]),
        Route("/v1/models/{model:path}", partial(model_card, state), methods=["GET"]),
        Route("/health", partial(health, state), methods=["GET"]),
        Route("/metrics", partial(metrics, state), methods=["GET"]),
        Route("/tradeoff/status", partial(loop_status, state), methods=["GET"]),
        *feedback.routes(),
        *reviews.routes(),
    ]


def protocol_endpoint(
    state: ProxyState, read_json: JsonReader, make: Callable[[], Protocol]
) -> Endpoint:
    """The endpoint of one client protocol: every request ends in one `Call.finish()`."""

    async def endpoint(request: Request) -> Response:
        protocol = make()
        call = Call(state, protocol=protocol.name)
        if state.telemetry is not None:
            start_request(state.telemetry, call, request.method, request.url.path, request.headers)
        try:
            call.caller = state.keys.caller(request.headers, protocol.key_header)
            raw = await read_json(request)
            response: Response = await handle(state, call, protocol, raw, request)
        except ProxyError as exc:
            call.finish(exc.status, exc.message)
            return protocol.error_response(exc, call.headers())
        except ClientGone as exc:
            call.finish(CLIENT_CLOSED, str(exc) or "client disconnected before the answer")
            return Response(status_code=CLIENT_CLOSED)
        except Exception as exc:  # a bug: logged with its traceback, answered in the shape
            log.exception("request %s failed", call.request_id)
            error = internal_error(exc, call.request_id)
            call.finish(500, error.message)
            return protocol.error_response(error, call.headers())
        except BaseException as exc:
            call.finish(500, f"internal error: {type(exc).__name__}")
            raise
        return response

    return endpoint


async def models(state: ProxyState, request: Request) -> Response:
    state.keys.caller(request.headers)
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "tradeoff-policy"}
        for name in state.policies.current
    ] + [
        {"id": name, "object": "model", "created": 0, "owned_by": "tradeoff"}
        for name in state.targets
    ]
    return JSONResponse({"object": "list", "data": data})


async def model_card(state: ProxyState, request: Request) -> Response:
    """GET /v1/models/{id}: a policy's or a configured model's card, from the config."""
    state.keys.caller(request.headers)
    name = request.path_params["model"]
    card: dict[str, Any] = {"id": name, "object": "model", "created": 0}
    if name in state.policies.current:
        served = state.policies.current[name]
        card["owned_by"] = "tradeoff-policy"
        card["models"] = list(served.policy.models)
        card["baseline"] = served.baseline
    elif name in state.targets:
        target = state.targets[name]
        card["owned_by"] = "tradeoff"
        card["tier"] = target.entry.tier
        card["capabilities"] = dataclasses.asdict(target.capabilities)
    elif name in state.reviewers:  # a person: never called, a draft answers (router/review)
        reviewer = state.reviewers[name]
        card["owned_by"] = "tradeoff"
        card["tier"] = "human"
        card["draft"] = reviewer.draft
        card["review_cost_usd"] = reviewer.cost_usd
    else:
        raise unknown_model(name, state.model_names())
    return JSONResponse(card)


async def health(state: ProxyState, request: Request) -> Response:
    """Open to anyone (a balancer's probe): nothing here is a secret or costs a store read."""
    log_ = state.request_log
    return JSONResponse(
        {
            "status": "ok",
            "pid": os.getpid(),  # which worker or replica answered (serve --workers)
            "policies": state.policies.describe(),
            "models": list(state.targets),
            "log_pending": log_.pending,
            # key-limit settlements not yet in the shared store (0 without shared limits)
            "limits_pending": state.limits.pending if state.limits is not None else 0,
            "spool": str(log_.folder) if log_.spool else None,
            "dead_letter": {"path": str(log_.dead_letters.path), "rows": log_.dead_letters.rows},
        }
    )


async def loop_status(state: ProxyState, request: Request) -> Response:
    state.keys.admin(request.headers)
    if state.loop is None:
        return JSONResponse({"policies": []})
    return JSONResponse(await asyncio.to_thread(state.loop.status))  # reads the store


async def metrics(state: ProxyState, request: Request) -> Response:
    state.keys.admin(request.headers)
    for refresh in state.metrics.refreshers:  # counts read from the store, off the event loop
        await asyncio.to_thread(refresh)
    return PlainTextResponse(
        state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
