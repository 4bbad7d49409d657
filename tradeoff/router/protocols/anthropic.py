"""POST /v1/messages: Anthropic's Messages API, routed by the policy like chat.

An upstream that speaks it (Anthropic's API, or a model entry with `api: anthropic`) gets the
client's body as is, with the client's `anthropic-beta` header. Any other gets it translated to
chat completions, and its answer (or stream) translated back: `system` (with the `role:
"system"` messages that open `messages`; later ones stay system turns in place), text and image
content blocks, `tools` and `tool_choice`, `tool_use` / `tool_result` round trips,
`stop_sequences`, `metadata.user_id`, `output_config.effort` as `reasoning_effort`. Prompt-cache
markers (`cache_control`) reach Anthropic upstreams and are left out of a translation
(OpenAI-compatible servers cache on their own). What else chat completions cannot carry follows
protocols/translation.py's rule: adaptive `thinking`, `context_management`, earlier thinking
blocks and deferred tools are dropped, offered server tools removed (each named in the log row);
extended `thinking`, `top_k`, documents and other blocks or fields chat completions cannot
carry make the request one only a native upstream can serve, and with none in the plan the
client gets a 400 naming the feature. Claude Code's `metadata.user_id` names the session.

Errors on this route are Anthropic's: `{"type": "error", "error": {"type", "message"}}`, and
the proxy's key may come as `x-api-key` (Anthropic's clients) or `Authorization: Bearer`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tradeoff.evals.upstream import Reply
from tradeoff.router.errors import ProxyError, bad_request
from tradeoff.router.protocols.answer import from_chat
from tradeoff.router.protocols.anthropic_stream import (
    AnthropicStream,
    anthropic_usage,
    stop_reason,
)
from tradeoff.router.protocols.base import Protocol, StreamTranslator
from tradeoff.router.protocols.translation import Translation, translated_request
from tradeoff.router.request import ChatRequest, require_model

HANDLED = frozenset({"model", "messages", "system", "max_tokens", "tools", "tool_choice",
                     "stop_sequences", "temperature", "top_p", "stream", "metadata",
                     "thinking", "output_config", "context_management"})  # fmt: skip
# Anthropic's effort levels as chat completions' `reasoning_effort`.
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 408: "timeout_error",
               413: "request_too_large", 415: "invalid_request_error", 429: "rate_limit_error",
               504: "timeout_error", 529: "overloaded_error"}  # fmt: skip
OUR_METADATA = ("task", "session_id")  # hints for the proxy; Anthropic accepts only user_id


class _Translation(Translation):
    def _image(self, block: dict[str, Any], where: str) -> dict[str, Any] | None:
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif isinstance(source, dict) and source.get("type") == "url":
            url = str(source.get("url"))
        else:
            self.cannot(f"an image source other than base64 or url ({where})")
            return None
        return {"type": "image_url", "image_url": {"url": url}}

    def _tool_result(self, block: dict[str, Any], where: str) -> dict[str, Any]:
        content = block.get("content")
        if isinstance(content, list):
            texts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                else:
                    self.cannot(f"a tool_result block other than text ({where})")
            content = "".join(texts)
        text = content if isinstance(content, str) else ""
        if block.get("is_error"):
            text = f"Error: {text}"
        return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""),
                "content": text}  # fmt: skip

    def message(self, message: Any, where: str) -> None:
        if not isinstance(message, dict):
            raise bad_request(f"{where}: must be an object", where, "invalid_type")
        role = message.get("role")
        if role not in ("user", "assistant", "system"):
            raise bad_request(f"{where}.role: must be user, assistant or system", f"{where}.role")
        content = message.get("content")
        if role == "system":  # a system turn where it stands (leading ones joined `system`)
            instructions = _system(content, f"{where}.content") or ""
            self.messages.append({"role": "system", "content": instructions})
            return
        if isinstance(content, str):
            self.messages.append({"role": role, "content": content})
            return
        if not isinstance(content, list):
            raise bad_request(
                f"{where}.content: must be a string or an array of content blocks",
                f"{where}.content",
            )
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for i, block in enumerate(content):
            at = f"{where}.content[{i}]"
            kind = block.get("type") if isinstance(block, dict) else None
            if not isinstance(block, dict):
                raise bad_request(f"{at}: must be an object", at, "invalid_type")
            if kind == "text":
                parts.append({"type": "text", "text": str(block.get("text", ""))})
            elif kind == "image" and role == "user":
                image = self._image(block, at)
                parts += [image] if image else []
            elif kind == "tool_use" and role == "assistant":
                arguments = json.dumps(block.get("input") or {})
                calls.append({"id": str(block.get("id") or ""), "type": "function",
                              "function": {"name": str(block.get("name") or ""),
                                           "arguments": arguments}})  # fmt: skip
            elif kind == "tool_result" and role == "user":
                results.append(self._tool_result(block, at))
            elif kind in ("thinking", "redacted_thinking") and role == "assistant":
                self.drop("thinking blocks")  # an earlier turn's; a chat model cannot read them
            else:
                self.cannot(f"the content block {kind!r} ({at})")
        self.messages += results  # tool results answer the previous turn's calls: first
        if role == "assistant" and (parts or calls):
            text = "".join(p["text"] for p in parts) or None
            self.messages.append(
                {"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}
            )
        elif parts:
            only_text = all(p["type"] == "text" for p in parts)
            value = "".join(p["text"] for p in parts) if only_text else parts
            self.messages.append({"role": role, "content": value})


def _system(system: Any, where: str = "system") -> str | None:
    if system is None or isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in system
            if isinstance(b, dict) and b.get("type") == "text"
        )
    raise bad_request(f"{where}: must be a string or an array of text blocks", where)


def _leading_system(body: dict[str, Any]) -> tuple[str | None, list[Any]]:
    """`system` joined with the `role: "system"` messages that open `messages` (what the
    anthropic SDK sends as messages), and the messages after them."""
    parts = [_system(body.get("system"))]
    messages = list(body["messages"])
    while messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
        parts.append(_system(messages.pop(0).get("content"), "messages.0.content"))
    return "\n".join(p for p in parts if p) or None, messages


def _tools(body: dict[str, Any], t: _Translation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools: list[dict[str, Any]] = []
    names = set()
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise bad_request(f"tools.{i}: must be an object with a name", f"tools.{i}")
        if tool.get("type") not in (None, "custom"):
            t.remove_tool(str(tool.get("type")))  # offered: what the model sees without it
            continue
        if tool.get("defer_loading"):
            t.drop(f"tool {tool['name']} (deferred)")  # not loaded until the client asks
            continue
        names.add(tool["name"])
        function = {"name": tool["name"], "parameters": tool.get("input_schema") or {}}
        if tool.get("description"):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
        if kind == "tool" and choice.get("name") not in names:
            t.cannot(f"tool_choice naming {choice.get('name')!r}, a tool left out")
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        elif mapped is not None:
            out["tool_choice"] = mapped
        else:
            t.cannot(f"tool_choice of type {kind!r}")
        if choice.get("disable_parallel_tool_use") and tools:
            out["parallel_tool_calls"] = False
    elif choice is not None:
        raise bad_request("tool_choice: must be an object", "tool_choice", "invalid_type")
    return out


def _hints(body: dict[str, Any], chat: dict[str, Any], t: _Translation) -> None:
    """Thinking, effort and context management: mapped or dropped (a hint), or a requirement."""
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "adaptive":
        t.drop("thinking")  # "think if useful": a chat model decides for itself
    elif kind == "enabled":
        t.cannot("extended thinking")  # the answer must carry thinking blocks
    elif thinking is not None and kind != "disabled":
        t.cannot(f"thinking of type {kind!r}")
    config = body.get("output_config")
    for key, value in config.items() if isinstance(config, dict) else ():
        if key == "effort" and value in EFFORTS:
            chat["reasoning_effort"] = EFFORTS[value]
        elif key == "effort":
            t.drop("output_config.effort")
        elif key == "format" and isinstance(value, dict) and value.get("type") == "json_schema":
            schema = {"name": "output", "schema": value.get("schema") or {}}
            chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif value is not None:
            t.cannot(f"output_config.{key}")
    if body.get("context_management") is not None:
        t.drop("context_management")  # clears thinking or old tool results: nothing to clear


def translate(body: dict[str, Any]) -> tuple[dict[str, Any], _Translation]:
    """The chat-completions body for a Messages body, and what the translation met."""
    t = _Translation()
    system, messages = _leading_system(body)
    if system:
        t.messages.append({"role": "system", "content": system})
    skipped = len(body["messages"]) - len(messages)
    for i, message in enumerate(messages, skipped):
        t.message(message, f"messages.{i}")
    chat: dict[str, Any] = {"model": body["model"], "max_completion_tokens": body["max_tokens"]}
    for key in ("temperature", "top_p", "stream"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    metadata = body.get("metadata") or {}
    if isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    ours = {k: metadata[k] for k in OUR_METADATA if k in metadata}
    if ours:
        chat["metadata"] = ours
    chat.update(_tools(body, t))
    if "tools" not in chat:  # chat APIs refuse tool settings without tools
        chat.pop("tool_choice", None)
    _hints(body, chat, t)
    for key in sorted(set(body) - HANDLED):
        if body[key] is not None:
            t.cannot(f"the field {key!r}")
    chat["messages"] = t.messages
    return chat, t


def client_session(metadata: Any) -> str | None:
    """The session Claude Code names: its `metadata.user_id` is a JSON object with a
    `session_id` (one per run of the agent)."""
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    try:
        found = json.loads(user) if isinstance(user, str) and user.startswith("{") else None
    except ValueError:
        return None
    session = found.get("session_id") if isinstance(found, dict) else None
    return session if isinstance(session, str) and session else None


def _check(body: dict[str, Any]) -> None:
    limit = body.get("max_tokens")
    if limit is None:
        raise bad_request("max_tokens: field required", "max_tokens")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise bad_request("max_tokens: must be an integer >= 1", "max_tokens", "invalid_type")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: must be a non-empty array", "messages")
    for name, kind, label in (("stream", bool, "a boolean"), ("metadata", dict, "an object"),
                              ("tools", list, "an array"), ("stop_sequences", list,
                                                            "an array of strings")):  # fmt: skip
        if body.get(name) is not None and not isinstance(body[name], kind):
            raise bad_request(f"{name}: must be {label}", name, "invalid_type")
    stops = body.get("stop_sequences") or []
    if not all(isinstance(s, str) for s in stops):
        raise bad_request("stop_sequences: must be an array of strings", "stop_sequences")


class AnthropicProtocol(Protocol):
    name = "anthropic"
    key_header = "x-api-key"  # Anthropic's clients send their key there

    def __init__(self) -> None:
        self.model = ""
        self.beta: str | None = None

    def parse(self, body: dict[str, Any], headers: Any) -> ChatRequest:
        self.model = require_model(body)
        _check(body)
        self.beta = headers.get("anthropic-beta")
        chat, t = translate(body)
        if not t.messages:
            if t.untranslatable is None:
                raise bad_request("messages: no content to answer", "messages")
            t.messages.append({"role": "user", "content": ""})  # only a native call is made
        native = body
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and any(k in metadata for k in OUR_METADATA):
            kept = {k: v for k, v in metadata.items() if k not in OUR_METADATA}
            native = {k: v for k, v in body.items() if k != "metadata"}
            if kept:
                native["metadata"] = kept
        return translated_request(
            chat, headers, t, protocol=self.name, native=native, session=client_session(metadata)
        )

    def native_headers(self) -> dict[str, str]:
        return {"anthropic-beta": self.beta} if self.beta else {}

    def render(self, reply: Reply) -> bytes:
        if reply.api == self.name:
            return reply.content
        data = json.loads(reply.content)
        choice = (data.get("choices") or [{}])[0]
        answer = from_chat(choice.get("message") or {}, choice.get("finish_reason"))
        content: list[dict[str, Any]] = []
        if answer.text or answer.refusal:  # a refusal is Anthropic's text with its stop reason
            content.append({"type": "text", "text": answer.text + answer.refusal})
        for call in answer.calls:
            content.append({"type": "tool_use", "id": call.id, "name": call.name,
                            "input": tool_input(call.arguments)})  # fmt: skip
        return json.dumps({
            "id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant",
            "model": data.get("model") or self.model, "content": content,
            "stop_reason": stop_reason(answer.finish, bool(answer.refusal)), "stop_sequence": None,
            "usage": anthropic_usage(reply.usage),
        }).encode()  # fmt: skip

    def translator(self) -> StreamTranslator:
        return AnthropicStream(self.model)

    def error_body(self, error: ProxyError, request_id: str) -> dict[str, Any]:
        return anthropic_error(error, request_id)

    def stream_error(self, error: ProxyError) -> bytes:
        data = anthropic_error(error, None)
        return b"event: error\ndata: " + json.dumps(data).encode() + b"\n\n"


def anthropic_error(error: ProxyError, request_id: str | None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(error.status, "api_error")
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": error.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as a `tool_use` block's input object (Anthropic's clients
    need an object; arguments a model garbled are kept under `arguments`)."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}
