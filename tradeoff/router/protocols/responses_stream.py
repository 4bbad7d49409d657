"""A chat-completions stream as Responses API events, for clients of /v1/responses.

The events and their order are the Responses API's: `response.created` and
`response.in_progress` first; per output item `response.output_item.added`, its deltas
(`response.output_text.delta` within a `response.content_part`, or
`response.function_call_arguments.delta`) and its `.done` events, one item finished before the
next starts; `response.completed` (or `response.incomplete` for a cut answer) with the whole
response and its usage last. Every event carries a `sequence_number`. The official client's
`responses.stream()` accumulates them into the same object `responses.create()` returns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from tradeoff.evals.usage import Usage
from tradeoff.router.errors import ProxyError
from tradeoff.router.protocols.base import StreamTranslator, sse

Skeleton = Callable[[Any, str], dict[str, Any]]


class ResponsesStream(StreamTranslator):
    def __init__(self, skeleton: Skeleton) -> None:
        self.skeleton = skeleton
        self.response: dict[str, Any] | None = None
        self.items: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the item being streamed
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its item
        self.seq = 0

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse(kind, data)

    def start(self, model: Any) -> list[bytes]:
        if self.response is not None:
            return []
        self.response = self.skeleton(model, "in_progress")
        snapshot = dict(self.response)
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def _close_open(self) -> list[bytes]:
        item, self.open = self.open, None
        if item is None:
            return []
        index = self.items.index(item)
        item["status"] = "completed"
        out = []
        if item["type"] == "message":
            part = item["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            if part["type"] == "refusal":
                out.append(self._event("response.refusal.done", refusal=part["refusal"],
                                       **common))  # fmt: skip
            else:
                out.append(self._event("response.output_text.done", text=part["text"],
                                       logprobs=[], **common))  # fmt: skip
            out.append(self._event("response.content_part.done", part=part, **common))
        else:
            out.append(self._event("response.function_call_arguments.done",
                                   item_id=item["id"], output_index=index,
                                   name=item["name"], arguments=item["arguments"]))  # fmt: skip
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        return out

    def _open(self, item: dict[str, Any]) -> list[bytes]:
        out = self._close_open()
        self.items.append(item)
        self.open = item
        index = len(self.items) - 1
        shown = {**item, "content": []} if item["type"] == "message" else dict(item)
        out.append(self._event("response.output_item.added", output_index=index, item=shown))
        if item["type"] == "message":
            out.append(self._event("response.content_part.added", item_id=item["id"],
                                   output_index=index, content_index=0,
                                   part=dict(item["content"][0])))  # fmt: skip
        return out

    def text(self, text: str) -> list[bytes]:
        return self._text(text)

    def refusal(self, text: str) -> list[bytes]:
        return self._text(text, "refusal")

    def _text(self, text: str, kind: str = "output_text") -> list[bytes]:
        """A text (or, `kind="refusal"`, a refusal) delta, in the message being streamed or a
        new one."""
        key = "refusal" if kind == "refusal" else "text"
        out: list[bytes] = []
        open_ = self.open
        if open_ is None or open_["type"] != "message" or open_["content"][0]["type"] != kind:
            part: dict[str, Any] = {"type": kind, key: ""}
            if kind != "refusal":
                part["annotations"] = []
            item = {"type": "message", "id": f"msg_{uuid.uuid4().hex}", "status": "in_progress",
                    "role": "assistant", "content": [part]}  # fmt: skip
            out += self._open(item)
        assert self.open is not None
        self.open["content"][0][key] += text
        extra: dict[str, Any] = {} if kind == "refusal" else {"logprobs": []}
        out.append(self._event(f"response.{kind}.delta", item_id=self.open["id"],
                               output_index=self.items.index(self.open), content_index=0,
                               delta=text, **extra))  # fmt: skip
        return out

    def tool(self, index: int, call_id: str | None, name: str, arguments: str) -> list[bytes]:
        out: list[bytes] = []
        item = self.calls.get(index)
        if item is None:
            item = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex}",
                    "call_id": call_id or f"call_{uuid.uuid4().hex[:24]}",
                    "name": name, "arguments": "", "status": "in_progress"}  # fmt: skip
            self.calls[index] = item
            out += self._open(item)
        if arguments:
            item["arguments"] += arguments
            out.append(self._event("response.function_call_arguments.delta", item_id=item["id"],
                                   output_index=self.items.index(item),
                                   delta=arguments))  # fmt: skip
        return out

    def finish(self, usage: Usage | None) -> list[bytes]:
        out = self.start(None)
        if not self.items:
            out += self._text("")
        out += self._close_open()
        assert self.response is not None
        response = {**self.response, "status": "completed", "output": self.items}
        finish_status(response, self.finish_reason)
        response["usage"] = responses_usage(usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, response=response))
        return out

    @staticmethod
    def error_event(error: ProxyError) -> bytes:
        """The Responses API's `error` event; its `error` object also makes the official client
        raise, as it does for a chat stream that breaks off."""
        data = {"type": "error", "code": error.code, "message": error.message,
                "param": error.param, "error": error.body()["error"]}  # fmt: skip
        return b"event: error\ndata: " + json.dumps(data).encode() + b"\n\n"


def finish_status(response: dict[str, Any], finish_reason: Any) -> None:
    """A chat finish reason as the response's status (a cut answer is `incomplete`)."""
    reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(
        str(finish_reason)
    )
    if reason is not None:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}


def responses_usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt,
        "input_tokens_details": {"cached_tokens": usage.cached},
        "output_tokens": usage.completion,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.prompt + usage.completion,
    }
