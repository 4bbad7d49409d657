"""POST /v1/responses: OpenAI's Responses API, routed by the policy like chat.

An upstream that takes the Responses API as is (`api: responses` in models.yaml, or OpenAI's
own API with no `api_base`) gets the client's body unchanged. Any other gets it translated to
chat completions, and its answer (or stream) translated back: `input` as a string or items
(messages with text and image parts, `function_call` and `function_call_output` items),
`instructions` as a system message, function tools and `tool_choice`, `text.format` (JSON
object or JSON schema) as `response_format`, `max_output_tokens`, `reasoning.effort`.

What chat completions cannot carry follows protocols/translation.py's rule: hints
(`client_metadata`, `reasoning.summary`, earlier reasoning items) are dropped and offered
built-in tools (`web_search`, Codex's `namespace`) removed, each named in the log row; a stored
`previous_response_id`, `store: true`, a forced built-in tool and fields this module does not
know make the request one only a native upstream can serve (routing skips the others; with none
left the client gets a 400 naming the feature). `prompt_cache_key` names the session.

litellm has a translator too (`litellm.responses.litellm_completion_transformation`); it works
on litellm's pydantic types, turns built-in tools into other options silently, and costs far
more per request (benchmarks/bench_proxy.py measures both), so the proxy keeps its own.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tradeoff.evals.upstream import Reply
from tradeoff.router.errors import bad_request
from tradeoff.router.protocols.answer import Answer, from_chat
from tradeoff.router.protocols.base import Protocol, StreamTranslator
from tradeoff.router.protocols.responses_stream import (
    ResponsesStream,
    finish_status,
    responses_usage,
)
from tradeoff.router.protocols.translation import Translation, translated_request
from tradeoff.router.request import ChatRequest, require_model

# Fields translated to chat completions (others need an upstream that speaks Responses).
SAME_NAME = ("temperature", "top_p", "user", "parallel_tool_calls", "metadata", "service_tier",
             "prompt_cache_key", "safety_identifier", "stream")  # fmt: skip
HANDLED = frozenset(
    {*SAME_NAME, "model", "input", "instructions", "tools", "tool_choice", "text",
     "max_output_tokens", "reasoning", "store", "include", "stream_options", "truncation",
     "background", "client_metadata"}
)  # fmt: skip
# `include` values a translated answer satisfies by having nothing to include.
HARMLESS_INCLUDES = frozenset({"reasoning.encrypted_content", "message.output_text.logprobs"})
ECHOED = ("instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "reasoning",
          "service_tier", "temperature", "text", "tool_choice", "tools", "top_p", "user")  # fmt: skip
DEFAULTS = {"parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "metadata": {},
            "text": {"format": {"type": "text"}}, "reasoning": {}}  # fmt: skip


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_types(body: dict[str, Any]) -> None:
    checks = [
        ("input", isinstance(body.get("input"), str | list), "a string or an array of items"),
        ("instructions", isinstance(body.get("instructions"), str), "a string"),
        ("tools", isinstance(body.get("tools"), list), "an array"),
        ("stream", isinstance(body.get("stream"), bool), "a boolean"),
        ("store", isinstance(body.get("store"), bool), "a boolean"),
        ("text", isinstance(body.get("text"), dict), "an object"),
        ("reasoning", isinstance(body.get("reasoning"), dict), "an object"),
        ("metadata", isinstance(body.get("metadata"), dict), "an object"),
        ("include", _strings(body.get("include")), "an array of strings"),
        ("user", isinstance(body.get("user"), str), "a string"),
        ("tool_choice", isinstance(body.get("tool_choice"), str | dict), "a string or object"),
    ]
    for name, ok, expected in checks:
        if body.get(name) is not None and not ok:
            raise bad_request(f"'{name}' must be {expected}", param=name, code="invalid_type")
    limit = body.get("max_output_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise bad_request("'max_output_tokens' must be an integer >= 1", "max_output_tokens")
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad_request(f"'{name}' must be a number", param=name, code="invalid_type")


class _Translation(Translation):
    """A Responses body as chat-completions fields (see protocols/translation.py)."""

    def content(self, parts: Any, where: str) -> str | list[dict[str, Any]]:
        if isinstance(parts, str):
            return parts
        if not isinstance(parts, list):
            raise bad_request(f"'{where}' must be a string or an array of parts", where)
        out: list[dict[str, Any]] = []
        for i, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
                out.append({"type": "text", "text": part["text"]})
            elif kind == "refusal" and isinstance(part.get("refusal"), str):
                out.append({"type": "text", "text": part["refusal"]})
            elif kind == "input_image" and isinstance(part.get("image_url"), str):
                image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
                out.append({"type": "image_url", "image_url": image})
            elif isinstance(part, dict):
                self.cannot(f"the content part {kind!r} ({where}[{i}])")
            else:
                raise bad_request(f"'{where}[{i}]' must be an object", f"{where}[{i}]")
        if all(p["type"] == "text" for p in out):
            return "".join(p["text"] for p in out)
        return out

    def item(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise bad_request(f"'{where}' must be an object", where, "invalid_type")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise bad_request(
                    f"'{where}.role' must be user, system, developer or assistant", where
                )
            content = self.content(item.get("content"), f"{where}.content")
            if role == "assistant" and isinstance(content, list):
                content = "".join(str(p.get("text", "")) for p in content)
            # Chat templates of open models know `system`; `developer` is OpenAI's newer name.
            self.messages.append({"role": "system" if role == "developer" else role,
                                  "content": content})  # fmt: skip
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id") or item.get("id") or ""),
                "type": "function",
                "function": {"name": str(item.get("name") or ""),
                             "arguments": str(item.get("arguments") or "")},
            }  # fmt: skip
            last = self.messages[-1] if self.messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)  # the same turn's calls
            else:
                self.messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "reasoning":
            self.drop("reasoning items")  # an earlier turn's; a chat model cannot read them
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = self.content(output, f"{where}.output")
                output = output if isinstance(output, str) else json.dumps(output)
            self.messages.append(
                {"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": output}
            )
        else:
            self.cannot(f"the input item {kind!r} ({where})")


def _tools(body: dict[str, Any], t: _Translation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = []
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict):
            raise bad_request(f"'tools[{i}]' must be an object", f"tools[{i}]", "invalid_type")
        if tool.get("type") != "function":
            kind = str(tool.get("type"))  # offered, not forced: the model works without it
            t.remove_tool(f"{kind} {tool['name']}" if isinstance(tool.get("name"), str) else kind)
            continue
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                    if tool.get(k) is not None}  # fmt: skip
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        out["tool_choice"] = choice
    elif isinstance(choice, dict):
        if choice.get("type") == "function" and isinstance(choice.get("name"), str):
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        else:
            t.cannot(f"tool_choice of type {choice.get('type')!r}")
    return out


def _text_format(body: dict[str, Any], t: _Translation) -> dict[str, Any]:
    text = body.get("text") or {}
    out: dict[str, Any] = {}
    if text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        assert isinstance(fmt, dict)
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif fmt is not None and kind != "text":
        t.cannot(f"text.format of type {kind!r}")
    return out


def translate(body: dict[str, Any]) -> tuple[dict[str, Any], _Translation]:
    """The chat-completions body for a Responses body, and what the translation met."""
    t = _Translation()
    if body.get("instructions"):
        t.messages.append({"role": "system", "content": body["instructions"]})
    given = body.get("input")
    if isinstance(given, str):
        t.messages.append({"role": "user", "content": given})
    for i, item in enumerate(given if isinstance(given, list) else []):
        t.item(item, f"input[{i}]")
    chat: dict[str, Any] = {"model": body["model"]}
    chat.update({k: body[k] for k in SAME_NAME if body.get(k) is not None})
    chat.update(_tools(body, t))
    chat.update(_text_format(body, t))
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning") or {}
    if reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    for key in sorted(k for k in reasoning if k != "effort" and reasoning[k] is not None):
        t.drop(f"reasoning.{key}")  # summaries, what context to reason over: a chat model's own
    if body.get("client_metadata") is not None:
        t.drop("client_metadata")  # the client's own bookkeeping, for OpenAI's logs
    for key in sorted(set(body) - HANDLED):
        if body[key] is not None:
            t.cannot(f"the field {key!r}")
    if body.get("previous_response_id"):
        t.untranslatable = "previous_response_id (a response stored upstream)"
    if body.get("store") is True:
        t.cannot("store: true (responses kept upstream)")
    if body.get("background") is True:
        t.cannot("background: true")
    if body.get("truncation") not in (None, "disabled"):
        t.cannot(f"truncation: {body['truncation']!r}")
    for value in body.get("include") or []:
        if value not in HARMLESS_INCLUDES:
            t.cannot(f"include: {value!r}")
    if "tools" not in chat:  # chat APIs refuse tool settings without tools (as litellm drops)
        chat.pop("tool_choice", None)
        chat.pop("parallel_tool_calls", None)
    chat["messages"] = t.messages
    return chat, t


class ResponsesProtocol(Protocol):
    name = "responses"

    def __init__(self) -> None:
        self.request: dict[str, Any] = {}

    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        require_model(body)
        _check_types(body)
        stored = body.get("previous_response_id") or body.get("conversation")
        if body.get("input") is None and not stored and not body.get("prompt"):
            raise bad_request("'input' is required: a string or an array of items", "input")
        chat, t = translate(body)
        if not t.messages:
            if t.untranslatable is None:
                raise bad_request("'input' must not be empty", "input", "empty_array")
            t.messages.append({"role": "user", "content": ""})  # only a native call is made
        metadata = body.get("metadata")
        native = body
        if isinstance(metadata, dict) and "task" in metadata:  # our hint, not the upstream's
            native = {**body, "metadata": {k: v for k, v in metadata.items() if k != "task"}}
        self.request = body
        # Codex names its conversation by its prompt cache key (one per thread).
        key = body.get("prompt_cache_key")
        session = key if isinstance(key, str) and key else None
        return translated_request(
            chat, headers, t, protocol=self.name, native=native, session=session
        )

    def skeleton(self, model: Any, status: str) -> dict[str, Any]:
        """A Responses object echoing the request, with no output yet."""
        out: dict[str, Any] = {
            "id": f"resp_{uuid.uuid4().hex}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": model or self.request.get("model"),
            "output": [],
            "error": None,
            "incomplete_details": None,
            "previous_response_id": None,
            "store": False,
            "truncation": "disabled",
            "usage": None,
        }
        for key in ECHOED:
            out[key] = self.request.get(key, DEFAULTS.get(key))
        return out

    def render(self, reply: Reply) -> bytes:
        if reply.api == self.name:
            return reply.content
        data = json.loads(reply.content)
        choice = (data.get("choices") or [{}])[0]
        answer = from_chat(choice.get("message") or {}, choice.get("finish_reason"))
        response = self.skeleton(data.get("model"), "completed")
        response["output"] = output_items(answer)
        finish_status(response, choice.get("finish_reason"))
        response["usage"] = responses_usage(reply.usage)
        return json.dumps(response).encode()

    def translator(self) -> StreamTranslator:
        return ResponsesStream(self.skeleton)

    def stream_error(self, error: Any) -> bytes:
        return ResponsesStream.error_event(error)


def output_items(answer: Answer) -> list[dict[str, Any]]:
    """A chat answer as Responses output items: the text (or the refusal), then each tool
    call."""
    items: list[dict[str, Any]] = []
    if answer.text or answer.refusal or not answer.calls:
        part: dict[str, Any] = {"type": "output_text", "text": answer.text, "annotations": []}
        if answer.refusal:
            part = {"type": "refusal", "refusal": answer.refusal}
        items.append({"type": "message", "id": f"msg_{uuid.uuid4().hex}", "status": "completed",
                      "role": "assistant", "content": [part]})  # fmt: skip
    for call in answer.calls:
        items.append({"type": "function_call", "id": f"fc_{uuid.uuid4().hex}",
                      "call_id": call.id or f"call_{uuid.uuid4().hex[:24]}",
                      "name": call.name, "arguments": call.arguments,
                      "status": "completed"})  # fmt: skip
    return items
