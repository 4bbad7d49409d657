"""POST /v1/chat/completions: route, call with fallbacks (and cascade escalation), answer.

`model` names a policy (its plan decides the models) or a configured model (passed through).
Streaming requests continue in `router.streaming`; bookkeeping and the log row in `router.call`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

from starlette.responses import Response

from evals.estimate import reply_text
from evals.upstream import Reply
from policies.base import RouteRequest
from router.call import Call, Route
from router.errors import upstream_failure
from router.fallback import AllFailed
from router.sse import first_of
from router.state import ProxyState
from router.streaming import open_stream
from router.validation import ChatRequest, parse_chat_request, unknown_model

# What the request log says about routes no plan chose.
PASS_THROUGH_REASON = "pass-through: the client named this model"
VIOLATION_REASON = "violation fallback: the policy's baseline serves until a new version"


def resolve_route(state: ProxyState, chat: ChatRequest) -> Route:
    served = state.policies.current.get(chat.model)
    if served is not None:
        if state.loop is not None and state.loop.serves_baseline(served):
            assert served.baseline is not None
            return Route(
                (served.baseline,),
                served.name,
                served.baseline,
                served=served,
                by_baseline=True,
                reason=VIOLATION_REASON,
            )
        plan = served.policy.plan(RouteRequest(chat.prompt, chat.task))
        return Route(
            plan.models,
            served.name,
            served.baseline,
            plan.verifier,
            plan.samples,
            served,
            reason=plan.reason or None,
        )
    if chat.model in state.targets:
        return Route((chat.model,), reason=PASS_THROUGH_REASON)
    raise unknown_model(chat.model, state.model_names())


def _choices(reply: Reply) -> tuple[dict[str, Any], list[str]]:
    """The parsed body and each choice's text ("" where a choice has none)."""
    try:
        data = json.loads(reply.content)
        texts = [str(c["message"].get("content") or "") for c in data["choices"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}, []
    return data, texts


def _only_choice(reply: Reply, data: dict[str, Any], index: int) -> Reply:
    """The reply reduced to one of its sampled choices (the client asked for one)."""
    data = {**data, "choices": [{**data["choices"][index], "index": 0}]}
    return Reply(json.dumps(data).encode(), reply.prompt_tokens, reply.completion_tokens)


async def _complete(state: ProxyState, call: Call, deadline: float) -> Reply:
    """Non-streaming: fallbacks along the plan and, with a usable verifier, escalation.

    Cascade: escalate to the next model while the verifier rejects the answer. Best-of-k
    (`samples` > 1): the first model is asked for k choices at once (`n`), the first one the
    verifier accepts is returned, else escalate. Every call is paid for and logged. Without a
    usable (reference-free) verifier the plan is plain fallback order.
    """
    assert call.chat is not None and call.route is not None
    chat, route = call.chat, call.route
    verify = state.verifier(route.verifier) if route.verifier else None
    sampled = route.models[0]
    k = route.samples if verify is not None and chat.body.get("n") in (None, 1) else 1

    async def attempt(model: str, timeout_s: float) -> Reply:
        body = {**chat.body, "n": k} if k > 1 and model == sampled else chat.body
        return await state.adapter.complete(state.targets[model], body, timeout_s)

    models = list(route.models)
    previous: Reply | None = None
    while True:
        try:
            reply = await call.try_models(models, attempt, deadline)
        except AllFailed:
            if previous is None:
                raise
            return previous  # escalation failed: the rejected answer beats no answer
        model = call.trace.model
        assert model is not None
        generated = functools.partial(reply_text, reply.content)  # counted only without usage
        call.add_usage(model, reply.prompt_tokens, reply.completion_tokens, generated)
        if verify is None:
            return reply
        data, texts = _choices(reply)
        many = k > 1 and model == sampled and len(texts) > 1
        later = models[models.index(model) + 1 :] if model in models else []
        if not later and not many:
            return reply  # nothing to escalate to: no need to judge
        accepted: int | None = None
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                accepted = await verify(texts if many else texts[:1], chat)
        except TimeoutError:
            pass  # no time left to judge: keep the answer we have
        answer = _only_choice(reply, data, accepted or 0) if many else reply
        if accepted is not None or not later or time.monotonic() >= deadline:
            return answer
        previous, models = answer, later  # the verifier rejected it: escalate along the plan
        call.trace.fallbacks += 1


async def handle_chat(state: ProxyState, call: Call, raw: bytes, request: Any) -> Any:
    """Answer one parsed-or-not request; the caller turns ProxyError into a response."""
    chat = parse_chat_request(raw, request.headers)
    call.chat = chat
    call.route = resolve_route(state, chat)
    if state.loop is not None:
        state.loop.on_route(call)
    deadline = time.monotonic() + state.settings.timeout_s
    if chat.stream:
        return await open_stream(state, call, deadline, request)
    try:
        reply = await first_of(
            asyncio.ensure_future(_complete(state, call, deadline)), request.receive
        )
    except AllFailed as failed:
        raise upstream_failure(state.scrubber, failed) from None
    content = state.scrubber.bytes(reply.content)
    if call.keep_answer:
        call.answer = content
    call.finish(200)
    response = Response(content, media_type="application/json", headers=call.headers())
    return state.loop.after(call, response) if state.loop is not None else response
