"""The stand-in upstream's other APIs: OpenAI's Responses API and Anthropic's Messages API, as a
provider that speaks them natively answers (bodies and SSE event streams), for the proxy's
native forwarding. Used by `tests.support.upstream.Upstream`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def responses_prompt(body: dict[str, Any]) -> str:
    """The last user text of a Responses body."""
    given = body.get("input")
    if isinstance(given, str):
        return given
    for item in reversed(given if isinstance(given, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            return _text(item.get("content"))
    return ""


def messages_prompt(body: dict[str, Any]) -> str:
    """The last user text of an Anthropic Messages body."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(
                    str(b.get("text", "")) for b in content
                    if isinstance(b, dict) and b.get("type") == "text"
                )  # fmt: skip
            return str(content or "")
    return ""


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def response_object(
    body: dict[str, Any], reply: str, tool: dict[str, Any] | None, usage: dict[str, int]
) -> dict[str, Any]:
    """A Responses API response: the reply text, or one function call."""
    if tool is not None:
        item: dict[str, Any] = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex}",
                                "call_id": "call_native_1", "name": tool["name"],
                                "arguments": json.dumps(tool.get("arguments", {})),
                                "status": "completed"}  # fmt: skip
    else:
        item = {"type": "message", "id": f"msg_{uuid.uuid4().hex}", "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply, "annotations": []}]}  # fmt: skip
    return {
        "id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
        "status": "completed", "model": body.get("model"), "output": [item],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": body.get("tools") or [],
        "usage": {"input_tokens": usage["prompt"],
                  "input_tokens_details": {"cached_tokens": usage["cached"]},
                  "output_tokens": usage["completion"],
                  "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
                  "total_tokens": usage["prompt"] + usage["completion"]},
    }  # fmt: skip


def response_events(response: dict[str, Any]) -> list[bytes]:
    """The response as the Responses API streams it."""
    seq = iter(range(10_000))
    start = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        _sse("response.created", {"type": "response.created", "sequence_number": next(seq),
                                  "response": start}),
        _sse("response.in_progress", {"type": "response.in_progress",
                                      "sequence_number": next(seq), "response": start}),
    ]  # fmt: skip
    for index, item in enumerate(response["output"]):
        shown = {**item, "content": []} if item["type"] == "message" else {**item, "arguments": ""}
        events.append(_sse("response.output_item.added", {
            "type": "response.output_item.added", "sequence_number": next(seq),
            "output_index": index, "item": shown}))  # fmt: skip
        if item["type"] == "message":
            text = item["content"][0]["text"]
            for word in text.split(" "):
                events.append(_sse("response.output_text.delta", {
                    "type": "response.output_text.delta", "sequence_number": next(seq),
                    "item_id": item["id"], "output_index": index, "content_index": 0,
                    "delta": word + " ", "logprobs": []}))  # fmt: skip
        else:
            events.append(_sse("response.function_call_arguments.delta", {
                "type": "response.function_call_arguments.delta", "sequence_number": next(seq),
                "item_id": item["id"], "output_index": index,
                "delta": item["arguments"]}))  # fmt: skip
        events.append(_sse("response.output_item.done", {
            "type": "response.output_item.done", "sequence_number": next(seq),
            "output_index": index, "item": item}))  # fmt: skip
    events.append(_sse("response.completed", {"type": "response.completed",
                                              "sequence_number": next(seq),
                                              "response": response}))  # fmt: skip
    return events


def message_object(
    body: dict[str, Any], reply: str, tool: dict[str, Any] | None, usage: dict[str, int]
) -> dict[str, Any]:
    """An Anthropic Messages answer: the reply text, or one tool_use block."""
    if tool is not None:
        content = [{"type": "tool_use", "id": "toolu_native_1", "name": tool["name"],
                    "input": tool.get("arguments", {})}]  # fmt: skip
    else:
        content = [{"type": "text", "text": reply}]
    return {
        "id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
        "model": body.get("model"), "content": content,
        "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": usage["prompt"] - usage["cached"],
                  "cache_read_input_tokens": usage["cached"],
                  "cache_creation_input_tokens": 0, "output_tokens": usage["completion"]},
    }  # fmt: skip


def message_events(message: dict[str, Any]) -> list[bytes]:
    """The answer as Anthropic's Messages API streams it."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**usage, "output_tokens": 1}}  # fmt: skip
    events = [_sse("message_start", {"type": "message_start", "message": start}),
              _sse("ping", {"type": "ping"})]  # fmt: skip
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(_sse("content_block_start", {"type": "content_block_start",
                               "index": index, "content_block": {"type": "text", "text": ""}}))  # fmt: skip
            for word in block["text"].split(" "):
                events.append(_sse("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": word + " "}}))  # fmt: skip
        else:
            events.append(_sse("content_block_start", {"type": "content_block_start",
                               "index": index,
                               "content_block": {**block, "input": {}}}))  # fmt: skip
            events.append(_sse("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta",
                          "partial_json": json.dumps(block["input"])}}))  # fmt: skip
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(_sse("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                       "usage": {"output_tokens": usage["output_tokens"]}}))  # fmt: skip
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events
