"""Token counts for answers that came without `usage`, so their cost is never silently NULL.

An upstream without usage, or a stream cut before its usage chunk, still billed the tokens it
read and wrote. The proxy counts them itself with tiktoken: the model's own encoding when
tiktoken knows the model (OpenAI's), else o200k_base. For other providers' models that is an
estimate (tokenizers differ by some 10-30%), which is why the row says `cost_estimated`.
Encodings load offline from the copy bundled with litellm: the proxy never downloads anything.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
from typing import Any

__all__ = ["count_prompt", "count_tokens", "reply_text", "warm"]

log = logging.getLogger("tradeoff")
DEFAULT_ENCODING = "o200k_base"
# OpenAI's chat format wraps each message in a few tokens, and primes the reply with a few more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


def _bundled_encodings() -> None:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return
    spec = importlib.util.find_spec("litellm")  # found, not imported (that takes seconds)
    if spec is not None and spec.submodule_search_locations:
        folder = os.path.join(
            spec.submodule_search_locations[0], "litellm_core_utils", "tokenizers"
        )
        os.environ["TIKTOKEN_CACHE_DIR"] = folder


@functools.cache
def _encoding(model: str | None) -> Any:
    """The tiktoken encoding for `model`, or None when none can be loaded offline."""
    _bundled_encodings()
    import tiktoken

    name = DEFAULT_ENCODING
    if model:
        with contextlib.suppress(KeyError):  # a model tiktoken does not know
            name = tiktoken.encoding_name_for_model(model)
    for candidate in dict.fromkeys((name, DEFAULT_ENCODING)):
        try:
            return tiktoken.get_encoding(candidate)
        except Exception as exc:  # not bundled, and no network: try the default, then bytes
            log.warning("tokenizer %s unavailable (%s)", candidate, type(exc).__name__)
    return None


def warm() -> None:
    """Load the default encoding now (a fraction of a second), not in the first request."""
    _encoding(None)


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens in `text` (about 4 bytes a token when no encoding could be loaded)."""
    if not text:
        return 0
    encoding = _encoding(model)
    if encoding is None:
        return max(1, len(text.encode("utf-8", "replace")) // 4)
    return len(encoding.encode_ordinary(text))


def count_prompt(prompt: str, messages: int, model: str | None = None) -> int:
    """Prompt tokens of a chat request whose messages' text is `prompt`."""
    return count_tokens(prompt, model) + TOKENS_PER_MESSAGE * messages + TOKENS_PER_REPLY


def reply_text(content: bytes) -> str:
    """The generated text of a chat completion's JSON: every choice's content and tool calls."""
    try:
        data = json.loads(content)
    except ValueError:
        return ""
    choices = data.get("choices") if isinstance(data, dict) else None
    pieces: list[str] = []
    for choice in choices if isinstance(choices, list) else []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            pieces.extend(message_text(message))
    return "".join(pieces)


def message_text(message: dict[str, Any]) -> list[str]:
    """The text of a message or a streamed delta: its content and its tool calls' arguments."""
    pieces = []
    content = message.get("content")
    if isinstance(content, str):
        pieces.append(content)
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            pieces += [str(function.get(k) or "") for k in ("name", "arguments")]
    return pieces
