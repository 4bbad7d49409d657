"""A refine variant served: the proxy runs the generate-verify-refine loop inside the request.

For a request naming `<model>:fix` (a variant with `refine:`, evals/refine.py) the proxy asks
the model, checks the answer with the same verifier the eval runner uses (the variant's
`verifier:`, else the request's own `response_format`), and on failure sends the check's message
back as a new user turn, up to `rounds` more times. The client gets the last answer; every
round is paid for and counted on the request's log row (`Call.add_usage`; the served answer, the
last, is counted by the caller as for any model). A tool-call answer is checked against the
offered tools' schemas (router/verify.py), its failure sent back the same way.
A streamed request's rounds are read whole (buffered) and checked; the last is relayed from the
buffer, so its first token reaches the client only once the loop is done.

With `escalate: MODEL`, an answer still failing after the last round goes on to that model: the
client's own request (not the failed conversation) is sent to it and its answer served, priced
at its rate (`Call.escalated` names it, on the row and in `x-tradeoff-escalated`); `rounds`
counts it as one more round.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from tradeoff.evals.graders import Grader, Item
from tradeoff.evals.graders.tool_calls import calls_problem
from tradeoff.evals.refine import FAILED, RefineSpec, failure, verifier_for
from tradeoff.evals.targets import Target
from tradeoff.evals.upstream import Reply, Stream, UpstreamError
from tradeoff.router.call import Call
from tradeoff.router.protocols.answer import Answer, answers
from tradeoff.router.protocols.base import generated_text
from tradeoff.router.stream_cascade import Recorded, record


async def _why(
    verifier: Grader | None, answer: Answer, body: dict[str, Any], item: Item
) -> str | None:
    """Why the answer fails its check: tool calls against the offered tools' schemas, text
    against the verifier; None when it passes or nothing checks it."""
    if answer.calls:
        return calls_problem(answer.calls, body.get("tools"))
    return await failure(verifier, answer.text, item) if verifier is not None else None


def _repair(body: dict[str, Any], answer: Answer, why: str) -> dict[str, Any]:
    """The next round's request: the failed answer (a tool call as text) and the failure."""
    said = answer.text or "\n".join(f"{c.name}({c.arguments})" for c in answer.calls)
    messages = [
        *body.get("messages", []),
        {"role": "assistant", "content": said},
        {"role": "user", "content": FAILED.format(why=why)},
    ]
    return {**body, "messages": messages}


async def complete_refined(
    call: Call,
    model: str,
    target: Target,
    body: dict[str, Any],
    spec: RefineSpec,
    timeout_s: float,
) -> Reply:
    """The loop's last reply; the rounds before it are added to `call`'s usage and cost."""
    adapter = call.state.adapter
    verifier = verifier_for(spec, body)
    reply = await adapter.complete(target, body, timeout_s)
    call.rounds = 1
    item = Item(dataset="", item_id="", task="", messages=list(body.get("messages") or []))
    asked = body
    for attempt in range(spec.rounds + 1):
        found = answers(reply)
        why = await _why(verifier, found[0], body, item) if found else None
        if why is None or (attempt == spec.rounds and spec.escalate is None):
            return reply
        call.add_usage(model, reply.usage, functools.partial(generated_text, reply))
        call.rounds = (call.rounds or 1) + 1
        if attempt == spec.rounds:
            assert spec.escalate is not None
            reply = await adapter.complete(call.state.targets[spec.escalate], asked, timeout_s)
            call.escalated = spec.escalate  # the caller prices the served answer at its rate
            return reply
        body = _repair(body, found[0], why)
        reply = await adapter.complete(target, body, timeout_s)
    return reply


async def open_refined_stream(
    call: Call,
    model: str,
    target: Target,
    body: dict[str, Any],
    spec: RefineSpec,
    timeout_s: float,
    keep_usage: bool,
    headers: dict[str, str] | None = None,
) -> Stream | Recorded:
    """A streamed request's loop: each round's answer read whole (buffered) and checked; the
    last is relayed from the buffer, so the client's first token waits for the whole loop."""
    state = call.state
    adapter = state.adapter
    verifier = verifier_for(spec, body)

    async def round_(model: str, target: Target, body: dict[str, Any]) -> Recorded:
        try:
            async with asyncio.timeout(timeout_s):
                stream = await adapter.open_api_stream(
                    target, "chat", body, timeout_s, keep_usage, headers=headers
                )
                return await record(model, stream)
        except TimeoutError:
            raise UpstreamError(
                f"no whole answer within {timeout_s:.1f} s", kind="timeout"
            ) from None

    if verifier is None and not body.get("tools"):  # nothing to check: stream it live
        return await adapter.open_api_stream(
            target, "chat", body, timeout_s, keep_usage, headers=headers
        )
    item = Item(dataset="", item_id="", task="", messages=list(body.get("messages") or []))
    asked = body
    found = await round_(model, target, body)
    call.rounds = 1
    for attempt in range(spec.rounds + 1):
        why = await _why(verifier, found.answer, body, item)
        if why is None or (attempt == spec.rounds and spec.escalate is None):
            return found
        call.add_usage(model, found.usage, found.generated)
        call.rounds = (call.rounds or 1) + 1
        if attempt == spec.rounds:
            assert spec.escalate is not None
            escalated = state.targets[spec.escalate]
            found = await round_(spec.escalate, escalated, asked)  # priced as its model
            call.escalated = spec.escalate
            return found
        body = _repair(body, found.answer, why)
        found = await round_(model, target, body)
    return found
