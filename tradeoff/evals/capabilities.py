"""What a model can serve, and what a request needs: tools, vision, JSON-schema output, context.

```yaml
- model_name: small-local
  litellm_params: {model: hosted_vllm/qwen-1.5b, api_base: "http://127.0.0.1:8000/v1"}
  capabilities: {tools: false, vision: false, context_window: 32768, max_output_tokens: 4096}
```

Any subset of the keys may be given; the rest default to litellm's bundled model info where it
knows the model (`supports_function_calling`, `supports_vision`, `supports_response_schema`,
`max_input_tokens`, `max_output_tokens`): a provider's model, named without an `api_base`. A
model on a server of its own (an `api_base`, a self-hosted provider) may be anything its name
says, so litellm is not asked. Unknown stays unknown (None) and restricts nothing: a model
litellm has never heard of is not refused tools because of that. A variant
inherits its base's capabilities; its own `capabilities` key overrides single keys.

The proxy skips models that lack what a request needs (router/routing.py); the fit does not plan
an incapable model for items that need what it lacks (policies/data.py), using the same
`needs()` on an item's messages and its metadata's `tools` / `response_format`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from tradeoff.evals.errors import ConfigError

if TYPE_CHECKING:
    from tradeoff.evals.registry import ModelEntry

__all__ = ["Capabilities", "Needs", "capabilities", "check_capabilities", "needs"]

FLAGS = ("tools", "vision", "json_schema")
LIMITS = ("context_window", "max_output_tokens")
# litellm's model-info keys for each capability.
LITELLM_KEYS = {
    "tools": "supports_function_calling",
    "vision": "supports_vision",
    "json_schema": "supports_response_schema",
    "context_window": "max_input_tokens",
    "max_output_tokens": "max_output_tokens",
}
# Providers whose model names litellm cannot know (self-hosted servers name models freely).
SELF_HOSTED = ("hosted_vllm/", "ollama/", "ollama_chat/", "lm_studio/", "llamafile/")
IMAGE_PARTS = frozenset({"image_url", "image", "input_image"})


@dataclass(frozen=True)
class Capabilities:
    """What one model can serve; None means unknown (nothing is refused for it)."""

    tools: bool | None = None
    vision: bool | None = None
    json_schema: bool | None = None
    context_window: int | None = None  # input tokens
    max_output_tokens: int | None = None

    def missing(self, need: Needs, prompt_tokens: int | None = None) -> list[str]:
        """What this model lacks for `need` (empty: it can serve it). `prompt_tokens` is the
        request's input size, when a context window is to be checked."""
        lacking = [flag for flag in FLAGS if getattr(need, flag) and getattr(self, flag) is False]
        limit = self.max_output_tokens
        if need.output_tokens and limit is not None and need.output_tokens > limit:
            lacking.append(f"max_output_tokens >= {need.output_tokens}")
        window = self.context_window
        if prompt_tokens is not None and window is not None and prompt_tokens > window:
            lacking.append(f"a context window of {prompt_tokens} tokens")
        return lacking


@dataclass(frozen=True)
class Needs:
    """What a request asks of a model."""

    tools: bool = False
    vision: bool = False
    json_schema: bool = False
    output_tokens: int | None = None  # the most output tokens the request allows

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in IMAGE_PARTS for part in content
    )


def needs(body: dict[str, Any]) -> Needs:
    """What a chat-completions body needs: tools (declared, or tool turns in its history),
    vision (an image part), JSON-schema output, and its output token limit."""
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    tools = bool(body.get("tools")) or bool(body.get("functions"))
    vision = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        tools = tools or message.get("role") in ("tool", "function")
        tools = tools or bool(message.get("tool_calls"))
        vision = vision or _has_image(message.get("content"))
    response_format = body.get("response_format")
    schema = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    output = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    return Needs(tools=tools, vision=vision, json_schema=schema, output_tokens=output)


def check_capabilities(raw: Any, where: str) -> None:
    """A models.yaml `capabilities` value: a mapping of known keys with the right types."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: capabilities must be a mapping of {', '.join(FLAGS + LIMITS)}")
    for key, value in raw.items():
        if key in FLAGS:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: capabilities.{key} must be true or false")
        elif key in LIMITS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: capabilities.{key} must be a whole number >= 1")
        else:
            raise ConfigError(
                f"{where}: unknown capability {key!r}; use {', '.join(FLAGS + LIMITS)}"
            )


def _litellm_info(entry: ModelEntry) -> dict[str, Any]:
    model = entry.litellm_model
    if model.startswith(SELF_HOSTED) or entry.api_base:
        return {}
    from tradeoff.evals.llm import litellm

    cost_map = litellm().model_cost
    info = cost_map.get(model)
    if info is None and "/" in model:
        info = cost_map.get(model.split("/", 1)[1])
    return info if isinstance(info, dict) else {}


def capabilities(entry: ModelEntry) -> Capabilities:
    """The entry's capabilities: its own `capabilities` key, else litellm's model info."""
    given = entry.extra.get("capabilities") or {}
    values: dict[str, Any] = {key: given.get(key) for key in FLAGS + LIMITS}
    if any(value is None for value in values.values()):
        info = _litellm_info(entry)
        for key, value in values.items():
            found = info.get(LITELLM_KEYS[key])
            if value is None and found is not None and not isinstance(found, str):
                values[key] = bool(found) if key in FLAGS else int(found)
    return Capabilities(**values)
