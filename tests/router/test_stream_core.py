"""One reading of a chat-completions stream for every client protocol (protocols/base.py):
the Messages and Responses translators get the same pieces from the same chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tradeoff.router.protocols.anthropic_stream import AnthropicStream
from tradeoff.router.protocols.base import StreamTranslator
from tradeoff.router.protocols.responses_stream import ResponsesStream


def _chunk(delta: Any, finish: str | None = None) -> dict[str, Any]:
    return {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


CHUNKS = [
    _chunk({"role": "assistant", "content": "Let me "}),
    _chunk({"content": "look."}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "read", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a.txt"}'}}]}),
    _chunk({}, "tool_calls"),
]  # fmt: skip
# Chunks a broken upstream may send: each is skipped, never a crash.
MALFORMED = [
    None,
    {"choices": "x"},
    _chunk("not a delta"),
    _chunk({"tool_calls": ["x", {"index": "0", "function": None}]}),
    {"choices": [{"index": 1, "delta": {"content": "another choice"}}]},
]


def _events(translator: StreamTranslator, chunks: list[Any]) -> list[dict[str, Any]]:
    raw = b"".join(b for c in chunks for b in translator.feed(c)) + b"".join(
        translator.finish(None)
    )
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]


def _messages(chunks: list[Any]) -> tuple[str, list[tuple[str, str]], str]:
    text, calls, stop = "", [], ""
    for e in _events(AnthropicStream("m"), chunks):
        if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use":
            calls.append((e["content_block"]["name"], ""))
        elif e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta":
            text += e["delta"]["text"]
        elif e["type"] == "content_block_delta":
            calls[-1] = (calls[-1][0], calls[-1][1] + e["delta"]["partial_json"])
        elif e["type"] == "message_delta":
            stop = e["delta"]["stop_reason"]
    return text, calls, stop


def _responses(chunks: list[Any]) -> tuple[str, list[tuple[str, str]], str]:
    final = _events(
        ResponsesStream(lambda model, status: {"id": "r", "model": model, "status": status}), chunks
    )[-1]
    text = "".join(
        part.get("text", "") for item in final["response"]["output"] if item["type"] == "message"
        for part in item["content"]
    )  # fmt: skip
    calls = [
        (i["name"], i["arguments"])
        for i in final["response"]["output"]
        if i["type"] == "function_call"
    ]
    return text, calls, final["response"]["status"]


@pytest.mark.parametrize("noise", [[], MALFORMED])
def test_every_protocol_reads_the_same_text_and_tool_calls(noise: list[Any]) -> None:
    chunks = [*noise[:2], *CHUNKS[:3], *noise[2:], *CHUNKS[3:]]
    text, calls, stop = _messages(chunks)
    assert (text, calls, stop) == ("Let me look.", [("read", '{"path": "a.txt"}')], "tool_use")
    text, calls, status = _responses(chunks)
    assert (text, calls, status) == ("Let me look.", [("read", '{"path": "a.txt"}')], "completed")


def test_a_refusal_reads_as_a_refusal_in_every_protocol() -> None:
    chunks = [_chunk({"refusal": "I can't help with that."}), _chunk({}, "stop")]
    text, _, stop = _messages(chunks)
    assert (text, stop) == ("I can't help with that.", "refusal")
    final = _events(ResponsesStream(lambda m, s: {"id": "r", "model": m, "status": s}), chunks)
    part = final[-1]["response"]["output"][0]["content"][0]
    assert part == {"type": "refusal", "refusal": "I can't help with that."}
