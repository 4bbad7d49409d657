"""One answer, whichever API it came in: the translation core's answer side.

An `Answer` is what the proxy reads of a model's answer: its text, a refusal, its tool calls and
why it stopped (chat completions' `finish_reason` words). `answers(reply)` reads one from a
chat, Responses or Messages reply; `Collector` reads one from a stream of any of them, event by
event. Verifiers judge Answers, and the Messages and Responses renderings of a chat answer are
written from one, so a refusal or a tool call reads the same on every route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tradeoff.evals.upstream import Reply


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass
class Answer:
    text: str = ""
    refusal: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    finish: str | None = None  # stop | length | tool_calls | content_filter

    @property
    def generated(self) -> str:
        """Everything generated (text, refusal, tool names and arguments), to count tokens."""
        return self.text + self.refusal + "".join(c.name + c.arguments for c in self.calls)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def from_chat(message: Any, finish: Any = None) -> Answer:
    """A chat completion's `message` (one choice)."""
    message = message if isinstance(message, dict) else {}
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            calls.append(ToolCall(_str(call.get("id")), _str(function.get("name")),
                                  _str(function.get("arguments"))))  # fmt: skip
    finish = finish if isinstance(finish, str) else None
    return Answer(_str(message.get("content")), _str(message.get("refusal")), calls, finish)


def from_responses(response: Any) -> Answer:
    """A Responses API response object."""
    answer = Answer()
    output = response.get("output") if isinstance(response, dict) else None
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            answer.calls.append(ToolCall(_str(item.get("call_id")), _str(item.get("name")),
                                         _str(item.get("arguments"))))  # fmt: skip
        parts = item.get("content") if item.get("type") == "message" else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                answer.text += _str(part.get("text"))
                answer.refusal += _str(part.get("refusal"))
    status = response.get("status") if isinstance(response, dict) else None
    answer.finish = (
        "tool_calls" if answer.calls else ("length" if status == "incomplete" else "stop")
    )
    return answer


ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                    "tool_use": "tool_calls", "refusal": "content_filter"}  # fmt: skip


def from_anthropic(message: Any) -> Answer:
    """An Anthropic Messages API message."""
    answer = Answer()
    content = message.get("content") if isinstance(message, dict) else None
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            answer.text += _str(block.get("text"))
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            answer.calls.append(ToolCall(_str(block.get("id")), _str(block.get("name")), arguments))
    stop = message.get("stop_reason") if isinstance(message, dict) else None
    answer.finish = ANTHROPIC_FINISH.get(str(stop), "stop")
    if stop == "refusal":
        answer.refusal, answer.text = answer.text or "refused", ""
    return answer


def answers(reply: Reply) -> list[Answer]:
    """The answers in a reply (chat: one per choice); [] for one that is not readable."""
    try:
        data = json.loads(reply.content)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    if reply.api == "chat":
        choices = data.get("choices")
        return [
            from_chat(c.get("message"), c.get("finish_reason"))
            for c in (choices if isinstance(choices, list) else [])
            if isinstance(c, dict)
        ]
    if reply.api == "responses":
        return [from_responses(data)]
    if reply.api == "anthropic":
        return [from_anthropic(data)]
    return []


class Collector:
    """The answer of a stream in `api` (chat, responses, anthropic), fed each event's data."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.answer = Answer()
        self._calls: dict[int, ToolCall] = {}  # a chat delta's or a Messages block's index

    def feed(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if self.api == "responses":
            if data.get("type") in ("response.completed", "response.incomplete"):
                self.answer = from_responses(data.get("response"))
            return
        if self.api == "anthropic":
            self._anthropic(data)
            return
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _dict(choice.get("delta"))
            self.answer.text += _str(delta.get("content"))
            self.answer.refusal += _str(delta.get("refusal"))
            for part in delta.get("tool_calls") or []:
                if isinstance(part, dict):
                    function = _dict(part.get("function"))
                    call = self._call(part.get("index", 0), _str(part.get("id")))
                    call.name += _str(function.get("name"))
                    call.arguments += _str(function.get("arguments"))
            if isinstance(choice.get("finish_reason"), str):
                self.answer.finish = choice["finish_reason"]

    def _call(self, index: Any, id: str) -> ToolCall:
        if index not in self._calls:
            self._calls[index] = ToolCall(id, "", "")
            self.answer.calls.append(self._calls[index])
        return self._calls[index]

    def _anthropic(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                call = self._call(data.get("index"), _str(block.get("id")))
                call.name = _str(block.get("name"))
        elif kind == "content_block_delta":
            delta = _dict(data.get("delta"))
            if delta.get("type") == "input_json_delta":
                self._call(data.get("index"), "").arguments += _str(delta.get("partial_json"))
            else:
                self.answer.text += _str(delta.get("text"))
        elif kind == "message_delta":
            delta = _dict(data.get("delta"))
            stop = delta.get("stop_reason")
            self.answer.finish = ANTHROPIC_FINISH.get(str(stop), "stop")
            if stop == "refusal":
                self.answer.refusal, self.answer.text = self.answer.text or "refused", ""
