"""One request, whatever protocol it came by: parse, route, call with fallbacks (and cascade
escalation), answer.

The client's protocol (router/protocols) turns its body into the internal request and the
upstream's answer back; everything between is protocol-blind. `model` names a policy (its plan
decides the models) or a configured model (passed through); routing is router/routing.py.
Streaming requests continue in `router.streaming`; bookkeeping and the log row in `router.call`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

from starlette.responses import Response

from tradeoff.evals.refine import refine_spec
from tradeoff.evals.upstream import Reply
from tradeoff.router.call import Call
from tradeoff.router.errors import ProxyError, upstream_failure
from tradeoff.router.fallback import AllFailed
from tradeoff.router.loop.shadow import answer_text
from tradeoff.router.protocols.answer import answers
from tradeoff.router.protocols.base import Protocol, chat_answer, generated_text
from tradeoff.router.refine import complete_refined
from tradeoff.router.request import parse_json_body
from tradeoff.router.review.drafts import new_review_id
from tradeoff.router.routing import await_pin, resolve_route
from tradeoff.router.sse import first_of
from tradeoff.router.state import ProxyState
from tradeoff.router.streaming import open_stream
from tradeoff.router.verify import verdict


def _only_choice(reply: Reply, index: int) -> Reply:
    """A chat reply reduced to one of its sampled choices (the client asked for one)."""
    data = json.loads(reply.content)
    data = {**data, "choices": [{**data["choices"][index], "index": 0}]}
    return Reply(json.dumps(data).encode(), reply.usage, reply.api)


async def _complete(state: ProxyState, call: Call, protocol: Protocol, deadline: float) -> Reply:
    """Non-streaming: fallbacks along the plan and, with a usable verifier, escalation.

    Cascade: escalate to the next model while the verifier rejects the answer. Best-of-k
    (`samples` > 1): the first model is asked for k choices at once (`n`, chat upstreams only),
    the first one the verifier accepts is returned, else escalate. Every call is paid for and
    logged. Without a usable (reference-free) verifier the plan is plain fallback order.
    """
    assert call.chat is not None and call.route is not None
    chat, route = call.chat, call.route
    verify = state.verifier(route.verifier) if route.verifier else None
    sampled = route.models[0]
    k = route.samples if verify is not None and chat.body.get("n") in (None, 1) else 1
    headers = protocol.native_headers()

    async def attempt(model: str, timeout_s: float) -> Reply:
        target = state.targets[model]
        api, body = protocol.upstream(target, chat)
        call.escalated = None  # set by a refine variant that escalates, for this attempt
        if api == "chat":
            body = {**body, "n": k} if k > 1 and model == sampled else body
            refine = refine_spec(target.entry)
            if refine is not None and body.get("n") in (None, 1):
                return await complete_refined(call, model, target, body, refine, timeout_s)
            return await state.adapter.complete(target, body, timeout_s)
        return await state.adapter.call(target, api, body, timeout_s, headers=headers)

    models = list(route.models)
    previous: tuple[str, Reply] | None = None
    while True:
        try:
            reply = await call.try_models(models, attempt, deadline)
        except AllFailed:
            if previous is None:
                raise
            # Escalation failed: the rejected answer beats no answer (and is what the row names).
            call.trace.model, reply = previous
            return reply
        model = call.trace.model
        assert model is not None
        # The generated text is counted only when the upstream sent no usage; an escalated
        # refine variant's answer is its escalation model's, priced at that model's rate.
        answered = call.escalated or model
        call.add_usage(answered, reply.usage, functools.partial(generated_text, reply))
        if verify is None:
            return reply
        found = answers(reply)
        many = k > 1 and model == sampled and reply.api == "chat" and len(found) > 1
        after = models[models.index(model) + 1 :] if model in models else []
        later = [m for m in after if m not in route.fallback_only]  # escalation, not failure
        if not later and not many:
            return reply  # nothing to escalate to: no need to judge
        accepted: int | None = None
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                accepted = await verdict(verify, found if many else found[:1], chat)
        except TimeoutError:
            pass  # no time left to judge: keep the answer we have
        answer = _only_choice(reply, accepted or 0) if many else reply
        if accepted is not None or not later or time.monotonic() >= deadline:
            return answer
        # The verifier rejected it: escalate along the plan (the baseline stays the last resort).
        previous = (model, answer)
        models = later + [m for m in after if m in route.fallback_only]
        call.trace.fallbacks += 1


def _render(protocol: Protocol, reply: Reply) -> bytes:
    try:
        return protocol.render(reply)
    except (ValueError, LookupError, TypeError, AttributeError):
        raise ProxyError(
            502,
            f"the upstream's answer is not a well-formed {reply.api} response",
            type="upstream_error",
            code="upstream_bad_answer",
        ) from None


async def handle(
    state: ProxyState, call: Call, protocol: Protocol, raw: bytes, request: Any
) -> Any:
    """Answer one parsed-or-not request; the caller turns ProxyError into a response."""
    chat = protocol.parse(parse_json_body(raw), request.headers)
    if state.settings.strict_translation:
        chat = chat.strict()
    call.chat = chat
    await await_pin(state, chat)
    call.route = resolve_route(state, chat, routed=protocol.routed)
    if call.route.review is not None:
        call.review_id = new_review_id()
        if chat.stream and call.answer_events is None:
            call.answer_events = []  # the draft answer, kept for the review queue
    if state.loop is not None:
        state.loop.on_route(call)
    deadline = time.monotonic() + state.settings.timeout_s
    if chat.stream:
        return await open_stream(state, call, protocol, deadline, request)
    try:
        reply = await first_of(
            asyncio.ensure_future(_complete(state, call, protocol, deadline)), request.receive
        )
    except AllFailed as failed:
        raise upstream_failure(state.scrubber, failed) from None
    content = state.scrubber.bytes(_render(protocol, reply))
    if call.review_id is not None:
        call.review_answer = answer_text(state.scrubber.bytes(chat_answer(reply)))
    if call.keep_answer:  # sampled by the loop for shadow grading, which reads chat answers
        call.answer = (
            content if protocol.name == "chat" else state.scrubber.bytes(chat_answer(reply))
        )
    call.finish(200)
    response = Response(content, media_type="application/json", headers=call.headers())
    return state.loop.after(call, response) if state.loop is not None else response
