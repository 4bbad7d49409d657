"""A chat-completions stream as Anthropic Messages events, for clients of /v1/messages.

`message_start` first; per content block `content_block_start`, its deltas (`text_delta`, or
`input_json_delta` for a tool call's arguments) and `content_block_stop`, one block closed
before the next starts; `message_delta` with the stop reason and the usage (which a chat stream
reports only at its end, so `message_start` carries zeros), then `message_stop`.
"""

from __future__ import annotations

import uuid
from typing import Any

from tradeoff.evals.usage import Usage
from tradeoff.router.protocols.base import StreamTranslator, sse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}  # fmt: skip


def stop_reason(finish: Any, refused: bool = False) -> str:
    """Anthropic's stop reason for a chat finish reason (a refusal is `refusal`, whatever it
    finished by)."""
    return "refusal" if refused else STOP_REASONS.get(str(finish), "end_turn")


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    """Anthropic's usage: `input_tokens` leaves out cache reads and writes."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": usage.prompt - usage.cached - usage.cache_write,
        "output_tokens": usage.completion,
        "cache_read_input_tokens": usage.cached,
        "cache_creation_input_tokens": usage.cache_write,
    }


class AnthropicStream(StreamTranslator):
    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.blocks = 0  # content blocks started
        self.open: str | None = None  # "text" or "tool_use": the block being streamed
        self.calls: dict[int, int] = {}  # chat tool-call index -> its block index
        self.refused = False  # a refusal streamed: the stop reason says so

    def start(self, model: Any) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
                   "model": model or self.model, "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": anthropic_usage(None)}  # fmt: skip
        return [sse("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [sse("content_block_stop", {"type": "content_block_stop", "index": self.blocks - 1})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.open = kind
        self.blocks += 1
        event = {"type": "content_block_start", "index": self.blocks - 1, "content_block": block}
        out.append(sse("content_block_start", event))
        return out

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": delta})  # fmt: skip

    def text(self, text: str) -> list[bytes]:
        out = [] if self.open == "text" else self._open("text", {"type": "text", "text": ""})
        out.append(self._delta(self.blocks - 1, {"type": "text_delta", "text": text}))
        return out

    def refusal(self, text: str) -> list[bytes]:
        self.refused = True  # a refusal is text with its own stop reason
        return self.text(text)

    def tool(self, index: int, call_id: str | None, name: str, arguments: str) -> list[bytes]:
        out: list[bytes] = []
        if index not in self.calls:
            block = {"type": "tool_use", "id": call_id or f"toolu_{uuid.uuid4().hex}",
                     "name": name, "input": {}}  # fmt: skip
            out += self._open("tool_use", block)
            self.calls[index] = self.blocks - 1
        if arguments:
            partial = {"type": "input_json_delta", "partial_json": arguments}
            out.append(self._delta(self.calls[index], partial))
        return out

    def finish(self, usage: Usage | None) -> list[bytes]:
        out = self.start(None) + self._close()
        stop = stop_reason(self.finish_reason, self.refused)
        out.append(sse("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": anthropic_usage(usage)}))  # fmt: skip
        out.append(sse("message_stop", {"type": "message_stop"}))
        return out
