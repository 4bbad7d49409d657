"""One measured call: a streamed chat completion through the shared upstream adapter.

The eval runner and the judge grader call models here; the proxy calls the same adapter
(`evals.upstream`), so OpenAI-compatible upstreams take its direct aiohttp path and other
providers its litellm path. What is measured: the text (a tool-call answer's calls as `render_calls` writes them), tokens (the stream's usage chunk;
counted when the provider sends none), cost from the entry's prices, total latency and time to
the first content token. Provider failures are data (`CallResult.error`, with the HTTP status
and Retry-After); resolved API keys are scrubbed from everything returned.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from tradeoff.evals.errors import ConfigError
from tradeoff.evals.graders.tool_calls import CallText, render_calls
from tradeoff.evals.llm import count_completion_tokens, count_prompt_tokens, scrub, token_prices
from tradeoff.evals.registry import ModelEntry
from tradeoff.evals.targets import Target, build_target
from tradeoff.evals.upstream import RETRYABLE_STATUS, Adapter, UpstreamError

TIMEOUT_STATUS = 408  # a call that ran out of time counts as the provider's timeout


@dataclass
class CallResult:
    """What one completion call produced. Errors are data: `error` set, `text` maybe partial."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error: str | None = None
    status: int | None = None  # HTTP status of a failed call, None for transport failures
    retry_after_s: float | None = None  # the provider's Retry-After, when it sent one
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        return self.error is not None and (self.status is None or self.status in RETRYABLE_STATUS)


def _delta(event: bytes) -> tuple[str | None, list[Any]]:
    """The content and the tool-call pieces of one SSE chunk of a chat completion stream
    (None and [] for [DONE], usage...)."""
    start = event.find(b"data:")
    payload = event[start + 5 :].strip() if start >= 0 else b""
    if not payload.startswith(b"{"):
        return None, []  # [DONE], or not a data line
    try:
        delta = json.loads(payload)["choices"][0]["delta"]
        content, calls = delta.get("content"), delta.get("tool_calls")
    except (ValueError, LookupError, TypeError, AttributeError):
        return None, []
    return (
        content if isinstance(content, str) else None,
        calls if isinstance(calls, list) else [],
    )


class _Calls:
    """A streamed answer's tool calls, assembled from their pieces (by index)."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.arguments: dict[int, list[str]] = {}

    def feed(self, pieces: list[Any]) -> None:
        for piece in pieces:
            if not isinstance(piece, dict):
                continue
            index = piece.get("index", 0)
            index = index if isinstance(index, int) else 0
            function = piece.get("function") or {}
            if function.get("name"):
                self.names[index] = self.names.get(index, "") + str(function["name"])
            if function.get("arguments"):
                self.arguments.setdefault(index, []).append(str(function["arguments"]))

    def render(self, text: str) -> str:
        """The answer's text, or the calls as `render_calls` records them when it made any."""
        if not self.names:
            return text
        calls = [
            CallText(self.names[i], "".join(self.arguments.get(i, []))) for i in sorted(self.names)
        ]
        return render_calls(text, calls)


def _describe(exc: UpstreamError) -> str:
    """One line: what failed, with the provider's own message when it sent one."""
    label = {"timeout": "Timeout", "connection": "ConnectionError"}.get(exc.kind, "APIError")
    detail = ""
    if exc.body:
        try:
            error = json.loads(exc.body).get("error")
            detail = str(error.get("message") if isinstance(error, dict) else error or "")
        except (ValueError, AttributeError):
            detail = exc.body[:500].decode("utf-8", "replace")
    return f"{label}: {exc.message}" + (f": {detail}" if detail else "")


async def acomplete(
    entry: ModelEntry,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    *,
    timeout_s: float = 120.0,
    prices: tuple[float, float] | None = None,
    adapter: Adapter | None = None,
    target: Target | None = None,
) -> CallResult:
    """One streamed chat completion of `entry`, measured; `timeout_s` bounds the whole call.

    Pass the caller's `adapter` (one connection pool per run) and `target` (resolved once) when
    making many calls; without them a pool is opened for this call alone. Raises ConfigError
    before calling when the entry lacks a key or a known price.
    """
    in_price, out_price = prices or token_prices(entry)
    target = target or build_target(entry)
    if target.broken:
        raise ConfigError(target.broken)
    if target.timeout_s is not None:  # the model's own limit (litellm_params.timeout)
        timeout_s = min(timeout_s, target.timeout_s)
    async with AsyncExitStack() as stack:
        if adapter is None:
            adapter = Adapter()
            stack.push_async_callback(adapter.aclose)
        result, usage_sent = await _measure(adapter, target, messages, params or {}, timeout_s)
    if not usage_sent and (result.ok or result.text):
        # No usage chunk (some servers omit it): count, since a cut stream was still billed.
        result.prompt_tokens = count_prompt_tokens(entry, messages)
        result.completion_tokens = count_completion_tokens(entry, result.text)
    result.text = scrub(result.text, list(target.secrets))
    result.cost_usd = result.prompt_tokens * in_price + result.completion_tokens * out_price
    return result


async def _measure(
    adapter: Adapter,
    target: Target,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    timeout_s: float,
) -> tuple[CallResult, bool]:
    """The call's result, and whether the upstream sent its token usage."""
    result = CallResult()
    pieces: list[str] = []
    calls = _Calls()
    body = {**params, "messages": messages, "stream": True}
    start = time.perf_counter()
    stream = None
    try:
        async with asyncio.timeout(timeout_s):
            stream = await adapter.open_stream(target, body, timeout_s, keep_usage=True)
            async for event in stream.events():
                content, call_pieces = _delta(event)
                calls.feed(call_pieces)
                if content:
                    if result.ttft_ms is None:
                        result.ttft_ms = (time.perf_counter() - start) * 1000
                    pieces.append(content)
    except UpstreamError as exc:
        result.status = TIMEOUT_STATUS if exc.kind == "timeout" else exc.status
        result.retry_after_s = exc.retry_after
        result.error = scrub(_describe(exc), list(target.secrets))[:2000]
    except TimeoutError:
        result.status = TIMEOUT_STATUS
        result.error = f"Timeout: no complete answer within {timeout_s:g}s"
    finally:
        if stream is not None:
            await stream.aclose()
    result.latency_ms = (time.perf_counter() - start) * 1000
    result.text = calls.render("".join(pieces))  # a tool-call answer: its calls, as text
    usage_sent = stream is not None and stream.prompt_tokens is not None
    if stream is not None and usage_sent:
        result.prompt_tokens = int(stream.prompt_tokens or 0)
        result.completion_tokens = int(stream.completion_tokens or 0)
    return result, usage_sent
