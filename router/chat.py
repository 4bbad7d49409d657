"""POST /v1/chat/completions: route, call with fallbacks (and cascade escalation), answer.

`model` names a policy (its plan decides the models) or a configured model (passed through).
Streaming requests continue in `router.streaming`; bookkeeping and the log row in `router.call`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.responses import Response

from policies.base import RouteRequest
from router.call import Call, Route
from router.errors import upstream_failure
from router.fallback import AllFailed, with_fallback
from router.sse import first_of
from router.state import ProxyState
from router.streaming import open_stream
from router.upstream import Reply, UpstreamError
from router.validation import ChatRequest, parse_chat_request, unknown_model


def resolve_route(state: ProxyState, chat: ChatRequest) -> Route:
    served = state.policies.current.get(chat.model)
    if served is not None:
        plan = served.policy.plan(RouteRequest(chat.prompt, chat.task))
        return Route(plan.models, served.name, served.baseline, plan.verifier)
    if chat.model in state.targets:
        return Route((chat.model,))
    raise unknown_model(chat.model, state.model_names())


def _text_of(reply: Reply) -> str:
    try:
        message = json.loads(reply.content)["choices"][0]["message"]
        return str(message.get("content") or "")
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


async def _complete(state: ProxyState, call: Call, deadline: float) -> Reply:
    """Non-streaming: fallbacks along the plan and, with a usable verifier, escalation."""
    assert call.chat is not None and call.route is not None
    chat, route = call.chat, call.route

    async def attempt(model: str, timeout_s: float) -> Reply:
        try:
            reply = await state.adapter.complete(state.targets[model], chat.body, timeout_s)
        except UpstreamError:
            state.metrics.observe_attempt(model, ok=False)
            raise
        state.metrics.observe_attempt(model, ok=True)
        return reply

    models = list(route.models)
    verify = state.verifier(route.verifier) if route.verifier else None
    previous: Reply | None = None
    while True:
        try:
            outcome = await with_fallback(
                models,
                attempt,
                cooldowns=state.cooldowns,
                deadline=deadline,
                retries=state.settings.retries,
                trace=call.trace,
            )
        except AllFailed:
            if previous is None:
                raise
            return previous  # escalation failed: the rejected answer beats no answer
        reply, model = outcome.value, call.trace.model
        assert model is not None
        call.add_usage(model, reply.prompt_tokens, reply.completion_tokens)
        later = models[models.index(model) + 1 :] if model in models else []
        if verify is None or not later or time.monotonic() >= deadline:
            return reply
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                accepted = await verify(_text_of(reply), chat)
        except TimeoutError:
            return reply  # no time left to escalate: keep the answer we have
        if accepted:
            return reply
        previous, models = reply, later  # the verifier rejected it: escalate along the plan
        call.trace.fallbacks += 1


async def handle_chat(state: ProxyState, call: Call, raw: bytes, request: Any) -> Any:
    """Answer one parsed-or-not request; the caller turns ProxyError into a response."""
    chat = parse_chat_request(raw, request.headers)
    call.chat = chat
    call.route = resolve_route(state, chat)
    deadline = time.monotonic() + state.settings.timeout_s
    if chat.stream:
        return await open_stream(state, call, deadline, request)
    try:
        reply = await first_of(
            asyncio.ensure_future(_complete(state, call, deadline)), request.receive
        )
    except AllFailed as failed:
        raise upstream_failure(state.scrubber, failed) from None
    call.finish(200)
    return Response(
        state.scrubber.bytes(reply.content), media_type="application/json", headers=call.headers()
    )
