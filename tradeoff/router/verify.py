"""A cascade's verdict on answers: a tool call by its arguments against its tool's JSON schema,
text by the plan's verifier (a reference-free grader, `ProxyState.verifier`).

A grader reads text; a tool call has none, so a grader alone would reject every tool step and
send the whole agent loop to the dear model. A call is accepted when it names a tool the request
offered and its arguments are a JSON object valid against that tool's `parameters`.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from tradeoff.router.protocols.answer import Answer, ToolCall
from tradeoff.router.request import ChatRequest
from tradeoff.router.state import Verifier


def _schemas(tools: Any) -> dict[str, Any]:
    """Each offered function's parameters schema, by name (chat-completions tools)."""
    out: dict[str, Any] = {}
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            out[function["name"]] = function.get("parameters")
    return out


def calls_fit(calls: list[ToolCall], tools: Any) -> bool:
    """Whether every call names an offered tool with arguments its schema accepts."""
    return calls_problem(calls, tools) is None


def calls_problem(calls: list[ToolCall], tools: Any) -> str | None:
    """Why a call does not fit the offered tools (one line, for a refine round), or None."""
    schemas = _schemas(tools)
    for call in calls:
        if call.name not in schemas:
            return f"{call.name!r} is not one of the tools offered ({', '.join(schemas)})"
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return f"the arguments of {call.name!r} are not JSON ({exc})"
        if not isinstance(arguments, dict):
            return f"the arguments of {call.name!r} are not a JSON object"
        schema = schemas[call.name]
        if not isinstance(schema, dict) or not schema:
            continue
        try:
            errors = list(
                jsonschema.validators.validator_for(schema)(schema).iter_errors(arguments)
            )
        except Exception:  # a schema that cannot be applied (malformed, unresolvable $ref)
            continue  # judges nothing: the arguments parsed, which is all we can check
        if errors:
            return f"the arguments of {call.name!r} do not fit its schema: {errors[0].message}"
    return None


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
