"""Token usage as providers report it, in one shape, with the kinds that are priced differently.

Every API counts differently: chat completions report `prompt_tokens` with the cached share in
`prompt_tokens_details.cached_tokens` (litellm adds Anthropic's `cache_read_input_tokens` and
`cache_creation_input_tokens` beside them); the Responses API `input_tokens` with
`input_tokens_details`; Anthropic's Messages API `input_tokens` *excluding* cache reads and
writes. `Usage` holds them one way: `prompt` counts every input token, cached or not, and
`completion` every output token, reasoning included (OpenAI's convention, which litellm follows
for every provider), so reasoning is priced at the output rate and never counted twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Usage", "from_anthropic", "from_chat", "from_embeddings", "from_responses"]


@dataclass(frozen=True)
class Usage:
    """One answer's tokens by kind; `cached`, `cache_write` and `reasoning` are parts of the
    totals, not additions to them."""

    prompt: int
    completion: int
    cached: int = 0  # input tokens read from the provider's prompt cache (a cheaper rate)
    cache_write: int = 0  # input tokens written to it (Anthropic charges a premium)
    reasoning: int = 0  # output tokens spent reasoning (already in `completion`)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt + other.prompt,
            self.completion + other.completion,
            self.cached + other.cached,
            self.cache_write + other.cache_write,
            self.reasoning + other.reasoning,
        )


MAX_COUNT = 2**53  # beyond it a count is nonsense (and a float no longer exact)


def _count(value: Any) -> int | None:
    """A token count as sent: a non-negative integer (12.0 too) within reason, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value <= MAX_COUNT else None


def _part(data: Any, *keys: str) -> int:
    """The first count found under `keys` (dotted paths into nested objects), else 0."""
    for key in keys:
        node = data
        for step in key.split("."):
            node = node.get(step) if isinstance(node, dict) else None
        count = _count(node)
        if count:
            return count
    return 0


def _usage(prompt: Any, completion: Any, cached: int, write: int, reasoning: int) -> Usage | None:
    p, c = _count(prompt), _count(completion)
    if p is None or c is None:
        return None
    cached, write = min(cached, p), min(write, p)
    if cached + write > p:
        write = p - cached
    return Usage(p, c, cached, write, min(reasoning, c))


def from_chat(usage: Any) -> Usage | None:
    """Chat and legacy completions' `usage` (litellm's shape included); None without counts."""
    if not isinstance(usage, dict):
        return None
    return _usage(
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        _part(usage, "prompt_tokens_details.cached_tokens", "cache_read_input_tokens"),
        _part(usage, "cache_creation_input_tokens", "prompt_tokens_details.cache_creation_tokens"),
        _part(usage, "completion_tokens_details.reasoning_tokens"),
    )


def from_responses(usage: Any) -> Usage | None:
    """The Responses API's `usage`."""
    if not isinstance(usage, dict):
        return None
    return _usage(
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        _part(usage, "input_tokens_details.cached_tokens"),
        0,
        _part(usage, "output_tokens_details.reasoning_tokens"),
    )


def from_anthropic(usage: Any) -> Usage | None:
    """Anthropic's `usage`: its `input_tokens` leave out cache reads and writes; added here."""
    if not isinstance(usage, dict):
        return None
    read = _part(usage, "cache_read_input_tokens")
    write = _part(usage, "cache_creation_input_tokens")
    fresh = _count(usage.get("input_tokens"))
    prompt = None if fresh is None else fresh + read + write
    return _usage(prompt, usage.get("output_tokens"), read, write, 0)


def from_embeddings(usage: Any) -> Usage | None:
    """An embeddings `usage`: input tokens only."""
    if not isinstance(usage, dict):
        return None
    return _usage(usage.get("prompt_tokens"), 0, 0, 0, 0)
