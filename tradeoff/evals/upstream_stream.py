"""An upstream's SSE stream, read event by event, in any of the APIs the proxy speaks.

Each API ends its stream and reports usage its own way: chat and legacy completions end with
`data: [DONE]` after a usage chunk (which the proxy always asks for, and drops again unless the
client asked for it); the Responses API ends with `response.completed` (or `.incomplete`)
carrying the response's usage; Anthropic's Messages API ends with `message_stop`, its usage
split between `message_start` and `message_delta`. An upstream's own error event midway
(`error`, `response.failed`) is an `UpstreamError`, like a dropped connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp

from tradeoff.evals.estimate import message_text
from tradeoff.evals.upstream_errors import UpstreamError
from tradeoff.evals.usage import Usage, from_anthropic, from_chat, from_responses

__all__ = ["APIS", "DONE", "Stream"]

DONE = b"data: [DONE]\n\n"
APIS = ("chat", "completions", "responses", "anthropic")
_TEXT_DELTAS = {
    "response.output_text.delta",
    "response.function_call_arguments.delta",
    "response.refusal.delta",
}


def _error_message(data: dict[str, Any]) -> str:
    error = data.get("error")
    if not isinstance(error, dict):
        response = data.get("response")
        error = response.get("error") if isinstance(response, dict) else None
    message = error.get("message") if isinstance(error, dict) else data.get("message")
    return f"upstream reported an error mid-stream: {message or data.get('type')}"


class Stream:
    """An open SSE stream whose first event has already arrived (so fallback was still possible).

    Iterate `events()` for raw SSE events. `usage` is filled from the stream's usage report;
    `last` is the parsed data of the event just yielded (None if it was not JSON), for callers
    that translate events without parsing them again.
    """

    def __init__(
        self, chunks: AsyncIterator[bytes], closer: Any, keep_usage: bool, api: str = "chat"
    ) -> None:
        self._chunks = chunks
        self._closer = closer
        self._keep_usage = keep_usage
        self.api = api
        self._buffer = b""
        self.first: bytes | None = None
        self.usage: Usage | None = None
        self.last: Any = None
        self.done = False
        self._text: list[str] = []
        self._content: list[str] = []  # text only (no tool-call arguments, no thinking)
        self._anthropic_usage: dict[str, Any] = {}

    @property
    def prompt_tokens(self) -> int | None:
        return None if self.usage is None else self.usage.prompt

    @property
    def completion_tokens(self) -> int | None:
        return None if self.usage is None else self.usage.completion

    @property
    def text(self) -> str:
        """What the stream generated so far (content and tool-call arguments)."""
        return "".join(self._text)

    @property
    def content(self) -> str:
        """The answer's text so far (no tool-call arguments, no thinking)."""
        return "".join(self._content)

    async def _next_event(self) -> bytes | None:
        while True:
            end = self._buffer.find(b"\n\n")
            if end >= 0:
                event, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
                if event.strip():
                    return event
                continue
            try:
                chunk = await self._chunks.__anext__()
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamError(
                    f"connection lost ({type(exc).__name__})", kind="connection"
                ) from None
            except StopAsyncIteration:
                if self._buffer.strip():
                    raise UpstreamError(
                        "upstream stream ended mid-event", kind="connection"
                    ) from None
                return None
            self._buffer += chunk.replace(b"\r\n", b"\n")

    def _inspect(self, event: bytes) -> bool:
        """Record usage, the streamed text and the end; False when the event is the usage-only
        chunk the client did not ask for."""
        self.last = None
        if event.startswith(DONE[:12]):
            self.done = self.api in ("chat", "completions")
            return True
        try:
            data = json.loads(event[event.index(b"data:") + 5 :])
        except ValueError:
            return True
        self.last = data
        if not isinstance(data, dict):
            return True
        if self.api == "responses":
            return self._responses(data)
        if self.api == "anthropic":
            return self._anthropic(data)
        choices = data.get("choices")
        for choice in choices if isinstance(choices, list) else []:  # kept to count tokens
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._text += message_text(delta)
                if isinstance(delta.get("content"), str):
                    self._content.append(delta["content"])
            elif isinstance(choice.get("text"), str):  # legacy completions
                self._text.append(choice["text"])
                self._content.append(choice["text"])
        if b'"usage"' not in event:
            return True
        usage = from_chat(data.get("usage"))
        if usage is not None:
            self.usage = usage
        return self._keep_usage or bool(data.get("choices"))

    def _responses(self, data: dict[str, Any]) -> bool:
        kind = data.get("type")
        if kind in _TEXT_DELTAS and isinstance(data.get("delta"), str):
            self._text.append(data["delta"])
            if kind == "response.output_text.delta":
                self._content.append(data["delta"])
        elif kind in ("response.completed", "response.incomplete"):
            response = data.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            self.usage = from_responses(usage) or self.usage
            self.done = True
        elif kind in ("response.failed", "error"):
            raise UpstreamError(_error_message(data), kind="connection")
        return True

    def _anthropic(self, data: dict[str, Any]) -> bool:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                for key in ("text", "partial_json", "thinking"):
                    if isinstance(delta.get(key), str):
                        self._text.append(delta[key])
                if isinstance(delta.get("text"), str):
                    self._content.append(delta["text"])
        elif kind == "message_start":
            message = data.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self._anthropic_usage.update(usage)
        elif kind == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):  # cumulative counts: the latest win
                self._anthropic_usage.update({k: v for k, v in usage.items() if v is not None})
            self.usage = from_anthropic(self._anthropic_usage) or self.usage
        elif kind == "message_stop":
            self.usage = from_anthropic(self._anthropic_usage) or self.usage
            self.done = True
        elif kind == "error":
            raise UpstreamError(_error_message(data), kind="connection")
        return True

    async def prime(self) -> None:
        event = await self._next_event()
        if event is None:
            raise UpstreamError("upstream closed the stream before any data", kind="connection")
        self.first = event

    async def events(self) -> AsyncGenerator[bytes, None]:
        """The remaining events; raises UpstreamError if the upstream breaks off before its
        stream's end ([DONE], `response.completed`, `message_stop`)."""
        event = self.first
        while event is not None:
            if self._inspect(event):
                yield event
            if self.done:
                return
            event = await self._next_event()
        ending = "[DONE]" if self.api in ("chat", "completions") else "its final event"
        raise UpstreamError(f"upstream ended the stream without {ending}", kind="connection")

    async def aclose(self) -> None:
        await self._closer()
