"""The router's one internal request (`ChatRequest`), and the checks of a chat-completions body.

Every client protocol (router/protocols) turns its request into a `ChatRequest` whose body is a
chat-completions body, the lingua franca every upstream can be sent: routing, capability
checks, sessions, fallbacks, the log row and cost are computed from it once, whatever the
client spoke. Only what the proxy relies on is checked strictly (`model`, `messages`, `stream`)
plus the types of the pass-through parameters it names, so a wrong type is a clear 400 here
rather than an opaque upstream error. Unknown fields pass through untouched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tradeoff.evals.capabilities import Needs, needs
from tradeoff.evals.estimate import count_prompt, count_tokens
from tradeoff.policies.families.base import flatten_messages
from tradeoff.router.errors import ProxyError, bad_request
from tradeoff.router.sessions import SESSION_HEADER

if TYPE_CHECKING:
    from tradeoff.evals.targets import Target

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TASK_HEADER = "x-tradeoff-task"
# Deeper than any real request (a JSON schema in `tools` or `response_format` nests a few dozen
# levels at most), shallow enough that encoding the body again never nears Python's stack limit.
MAX_DEPTH = 100


@dataclass(frozen=True)
class ChatRequest:
    """A checked request: the body to forward and what routing needs from it.

    `body` is what an upstream speaking `api` is sent: a chat-completions body for chat,
    Responses and Messages requests (translated by their protocol), the client's own body for
    embeddings and completions. `native` is the client's own body where another protocol's
    upstream can take it as is (router/protocols); `native_only` says why it must (a feature
    that cannot be translated), so routing skips upstreams that do not speak `protocol`.
    """

    model: str
    body: dict[str, Any]
    stream: bool
    task: str | None
    prompt: str  # policies.flatten_messages(messages): what the policy sees, as at fit time,
    # and what the log keeps with --log-prompts
    protocol: str = "chat"  # chat | responses | anthropic | embeddings | completions
    api: str = "chat"  # the upstream API `body` is for
    native: dict[str, Any] | None = None
    native_only: str | None = None
    needs: Needs = field(default_factory=Needs)
    # The session the client names: its x-tradeoff-session header, else one its protocol's
    # body carries (Codex's `prompt_cache_key`, Claude Code's `metadata.user_id`).
    client_session: str | None = None
    # What a translation to `body` left out (hints, offered built-in tools: protocols/
    # translation.py), named in the log row when a model took `body`, not `native`.
    dropped: tuple[str, ...] = ()
    removed_tool: str | None = None  # the first built-in tool removed (--strict-translation)

    def dropped_for(self, target: Target) -> str | None:
        """What `target` did not see of the client's request, for the log row; None: nothing."""
        if not self.dropped or (self.native is not None and target.speaks(self.protocol)):
            return None
        return ", ".join(self.dropped)

    def strict(self) -> ChatRequest:
        """The request under --strict-translation: a removed built-in tool is a requirement."""
        if self.removed_tool is None or self.native_only is not None:
            return self
        return replace(self, native_only=self.removed_tool)


def is_text(value: str) -> bool:
    """Whether `value` is valid Unicode: JSON's `"\\ud83d"` (what a client that cut a string
    mid-emoji sends) decodes to a lone surrogate, which UTF-8, a store or a header cannot take."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf8_size(text: str) -> int:
    """`text`'s length in UTF-8 bytes, a lone surrogate counted as the 3 bytes of the
    replacement character a tokenizer reads it as (never an error)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_optional(body: dict[str, Any]) -> None:
    checks: list[tuple[str, bool, str]] = [
        ("stream", isinstance(body.get("stream"), bool), "a boolean"),
        ("temperature", _is_number(body.get("temperature")), "a number"),
        ("top_p", _is_number(body.get("top_p")), "a number"),
        ("max_tokens", _is_int(body.get("max_tokens")), "an integer"),
        ("max_completion_tokens", _is_int(body.get("max_completion_tokens")), "an integer"),
        ("n", _is_int(body.get("n")), "an integer"),
        ("user", isinstance(body.get("user"), str), "a string"),
        ("tools", isinstance(body.get("tools"), list), "an array"),
        ("tool_choice", isinstance(body.get("tool_choice"), str | dict), "a string or object"),
        ("response_format", isinstance(body.get("response_format"), dict), "an object"),
        ("metadata", isinstance(body.get("metadata"), dict), "an object"),
        ("stream_options", isinstance(body.get("stream_options"), dict), "an object"),
    ]
    for name, ok, expected in checks:
        if body.get(name) is not None and not ok:
            raise bad_request(f"'{name}' must be {expected}", param=name, code="invalid_type")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        if body.get(name) is not None and body[name] < 1:
            raise bad_request(f"'{name}' must be at least 1", param=name, code="invalid_value")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise bad_request("'stop' must be a string or an array of strings", "stop", "invalid_type")


def _check_messages(messages: Any) -> str:
    if not isinstance(messages, list):
        raise bad_request("'messages' must be an array of messages", "messages", "invalid_type")
    if not messages:
        raise bad_request("'messages' must not be empty", "messages", "empty_array")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"'{where}' must be an object", where, "invalid_type")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_request(
                f"'{where}.role' must be one of {', '.join(sorted(ROLES))}",
                f"{where}.role",
                "invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise bad_request(
                f"'{where}.content' must be a string or an array of parts",
                f"{where}.content",
                "invalid_type",
            )
    return flatten_messages(messages)


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as inf
        raise _NotFinite(text)
    return value


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)


def _nesting_within(value: Any, limit: int) -> bool:
    """Whether no array or object in `value` sits deeper than `limit` (iteratively: a deep
    value must not exhaust the stack here either)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return True


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 `ProxyError`: not JSON, not an object, nested deeper
    than `MAX_DEPTH`, or holding NaN/Infinity (which no JSON parser upstream would accept)."""
    too_deep = bad_request(
        f"the request body nests arrays or objects deeper than {MAX_DEPTH} levels",
        code="nesting_too_deep",
    )
    try:
        body = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except _NotFinite as exc:
        raise bad_request(
            f"the request body holds {exc}, which is not a JSON number; send finite numbers",
            code="invalid_number",
        ) from None
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError):
        raise bad_request(
            "the request body is not valid JSON; send a JSON object", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")
    if not _nesting_within(body, MAX_DEPTH):
        raise too_deep
    return body


def require_model(body: dict[str, Any]) -> str:
    """The body's `model`, or a 400."""
    model = body.get("model")
    if model is None:
        raise bad_request("'model' is required: name a policy or a configured model", "model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string", "model", "invalid_type")
    return model


def parse_chat_request(raw: bytes, headers: dict[str, str] | Any) -> ChatRequest:
    """The checked request, or a 400 `ProxyError` naming the offending field."""
    return chat_request(parse_json_body(raw), headers)


def chat_request(
    body: dict[str, Any], headers: Any, session: str | None = None, **more: Any
) -> ChatRequest:
    """The internal request for a chat-completions body (a client's, or one a protocol
    translated to), checked; `session` is a session id the client's body names, `more` sets
    the other `ChatRequest` fields."""
    model = require_model(body)
    _check_optional(body)
    prompt = _check_messages(body.get("messages"))
    task = headers.get(TASK_HEADER) or None
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and "task" in metadata:
        # The task hint is ours: upstreams must not see it (OpenAI rejects unknown metadata use).
        body_task = metadata.get("task")
        if body_task is not None and not isinstance(body_task, str):
            raise bad_request("'metadata.task' must be a string", "metadata.task", "invalid_type")
        task = task or body_task
        rest = {k: v for k, v in metadata.items() if k != "task"}
        body = {k: v for k, v in body.items() if k != "metadata"}
        if rest:
            body["metadata"] = rest
    return ChatRequest(
        model=model,
        body=body,
        stream=bool(body.get("stream")),
        task=task,
        prompt=prompt,
        needs=needs(body),
        client_session=(headers.get(SESSION_HEADER) or session or None),
        **more,
    )


def unknown_model(model: str, known: list[str]) -> ProxyError:
    listed = ", ".join(known) or "none"
    return ProxyError(
        404,
        f"model {model!r} is neither a policy nor a configured model (available: {listed})",
        param="model",
        code="model_not_found",
    )


def input_tokens(chat: ChatRequest, model: str | None) -> int:
    """The request's input tokens as `model`'s tokenizer counts them (estimated: the proxy's
    count, messages and tool definitions; a provider's own count may differ a little)."""
    messages = chat.body.get("messages")
    tools = chat.body.get("tools")
    count = len(messages) if isinstance(messages, list) else 0
    return count_prompt(chat.prompt, count, model) + (
        count_tokens(json.dumps(tools), model) if tools else 0
    )
