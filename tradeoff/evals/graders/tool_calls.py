"""Tool calls: an answer's calls checked against the tools the request offered.

A call fits when it names an offered function and its arguments are a JSON object valid against
that function's `parameters` schema. The proxy judges its upstreams' tool calls with
`calls_problem` (router/verify.py); the eval runner records a tool-call answer as the text
`render_calls` writes, which the `tool_calls` grader (and a refine variant's check, on items
whose metadata offers `tools`) reads back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

from tradeoff.evals.graders.base import Grader, Item, Score, register_grader


class NamedCall(Protocol):
    """A tool call: the function's name and its arguments, the JSON text the model wrote."""

    @property
    def name(self) -> str: ...

    @property
    def arguments(self) -> str: ...


@dataclass(frozen=True)
class CallText:
    """A recorded tool call (`NamedCall`)."""

    name: str
    arguments: str


def _schemas(tools: Any) -> dict[str, Any]:
    """Each offered function's parameters schema, by name (chat-completions tools)."""
    out: dict[str, Any] = {}
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            out[function["name"]] = function.get("parameters")
    return out


def calls_problem(calls: Sequence[NamedCall], tools: Any) -> str | None:
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


def render_calls(text: str, calls: Sequence[NamedCall]) -> str:
    """A tool-call answer as the text an outcome records: `{"content", "tool_calls": [{name,
    arguments}]}`, the arguments as the model wrote them."""
    listed = [{"name": c.name, "arguments": c.arguments} for c in calls]
    return json.dumps({"content": text or None, "tool_calls": listed})


def parse_calls(response: str) -> list[NamedCall] | None:
    """The calls of a response `render_calls` wrote, or None for any other text."""
    if not response.startswith('{"content"'):
        return None
    try:
        listed = json.loads(response).get("tool_calls")
    except (ValueError, AttributeError):
        return None
    if not isinstance(listed, list):
        return None
    return [
        CallText(str(c.get("name")), str(c.get("arguments") or ""))
        for c in listed
        if isinstance(c, dict)
    ]


@register_grader("tool_calls")
class ToolCallsGrader(Grader):
    """1 if the answer calls the item's tools (metadata `tools`) with arguments their schemas
    accept. Reference-free. An answer without a tool call fails, unless `text_check` (a refine
    variant's check of text answers) passes it or, with none, `calls_only` is off."""

    needs_reference = False

    def grade(self, response: str, item: Item) -> Score:
        calls = parse_calls(response)
        if calls:
            return self._calls_score(calls, item)
        text_check = self.options.get("text_check")
        if isinstance(text_check, Grader):
            return text_check.grade(response, item)
        return self._no_call()

    async def agrade(self, response: str, item: Item) -> Score:
        calls = parse_calls(response)
        if calls:
            return self._calls_score(calls, item)
        text_check = self.options.get("text_check")
        if isinstance(text_check, Grader):
            return await text_check.agrade(response, item)
        return self._no_call()

    def _calls_score(self, calls: list[NamedCall], item: Item) -> Score:
        why = calls_problem(calls, self.option(item, "tools"))
        return Score(0.0, why) if why else Score(1.0)

    def _no_call(self) -> Score:
        if self.options.get("calls_only", True):
            return Score(0.0, "no tool was called")
        return Score(1.0)
