"""A cascade's verdict on answers: a tool call by its arguments against its tool's JSON schema,
text by the plan's verifier (a reference-free grader, `ProxyState.verifier`).

A grader reads text; a tool call has none, so a grader alone would reject every tool step and
send the whole agent loop to the dear model. A call is accepted when it names a tool the request
offered and its arguments are a JSON object valid against that tool's `parameters`
(`calls_problem`, shared with the eval runner's `tool_calls` grader).
"""

from __future__ import annotations

from typing import Any

from tradeoff.evals.graders.tool_calls import calls_problem
from tradeoff.router.protocols.answer import Answer, ToolCall
from tradeoff.router.request import ChatRequest
from tradeoff.router.state import Verifier


def calls_fit(calls: list[ToolCall], tools: Any) -> bool:
    """Whether every call names an offered tool with arguments its schema accepts."""
    return calls_problem(calls, tools) is None


async def verdict(verify: Verifier, found: list[Answer], chat: ChatRequest) -> int | None:
    """The index of the first answer in `found` to accept, or None (escalate)."""
    if not any(answer.calls for answer in found):
        return await verify([answer.text for answer in found], chat)  # a group judged at once
    for i, answer in enumerate(found):
        if answer.calls:
            if calls_fit(answer.calls, chat.body.get("tools")):
                return i
        elif await verify([answer.text], chat) == 0:
            return i
    return None
