"""The litellm adapter: the one module that imports litellm and calls it.

litellm is imported lazily, with `LITELLM_LOCAL_MODEL_COST_MAP=True` so its price map comes
from the installed package and never from the network.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

from evals.errors import ConfigError
from evals.registry import SECRET_KEYS, ModelEntry


@cache
def litellm() -> Any:
    """The litellm module, imported once with the bundled (offline) price map."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm as _litellm

    _litellm.telemetry = False
    _litellm.suppress_debug_info = True
    return _litellm


def token_prices(entry: ModelEntry) -> tuple[float, float]:
    """USD per (input, output) token: the entry's override, else litellm's bundled map.

    A model with no known price is an error, never a silent $0 (litellm returns 0.0 for
    names it does not know, and for some it does).
    """
    override = entry.price_override
    if override is not None:
        return override
    info = litellm().model_cost.get(entry.litellm_model)
    if info is None and "/" in entry.litellm_model:
        info = litellm().model_cost.get(entry.litellm_model.split("/", 1)[1])
    prices = (
        (
            float(info.get("input_cost_per_token") or 0.0),
            float(info.get("output_cost_per_token") or 0.0),
        )
        if info
        else (0.0, 0.0)
    )
    if prices == (0.0, 0.0):
        hint = (
            "gpu_hourly_usd (and run `tradeoff local attach` to calibrate)"
            if entry.tier == "local"
            else "litellm_params.input_cost_per_token and output_cost_per_token"
        )
        raise ConfigError(
            f"no price known for model {entry.name!r} ({entry.litellm_model}); set {hint} "
            "in models.yaml"
        )
    return prices


# -- one live call -----------------------------------------------------------------------------

# Registry fields that are not call arguments: limits and LiteLLM-router settings (litellm would
# send unknown ones upstream as request fields), and prices (cost is computed from `token_prices`;
# passed to litellm they would re-register the model's pricing on every call).
NOT_CALL_PARAMS = frozenset(
    {
        "rpm",
        "tpm",
        "max_concurrency",
        "max_parallel_requests",
        "weight",
        "order",
        "input_cost_per_token",
        "output_cost_per_token",
    }
)
# Statuses worth retrying: rate limits, timeouts, server errors. None = the connection failed.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


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
        return self.error is not None and (self.status is None or self.status in RETRYABLE_STATUSES)


def secret_values(entry: ModelEntry, resolved: dict[str, Any]) -> list[str]:
    """The resolved values of the entry's env references and secret keys (to scrub).

    Only keys the entry itself sets: `call_kwargs`' placeholder key for keyless servers is no
    secret, and scrubbing it would turn every "none" in an answer into `***`.
    """
    keys = set(entry.env_refs()) | {k for k in SECRET_KEYS if k in entry.litellm_params}
    return [str(resolved[k]) for k in keys if resolved.get(k) and len(str(resolved[k])) >= 4]


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced by `***` (errors and responses can echo a key)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def call_kwargs(entry: ModelEntry) -> dict[str, Any]:
    """litellm_params with env references resolved, minus registry-only fields."""
    params = entry.resolved_params()
    for key in NOT_CALL_PARAMS:
        params.pop(key, None)
    # Keyless OpenAI-compatible servers (vLLM, llama.cpp, a local gateway) need no key, but the
    # OpenAI client refuses to start without one: give it a placeholder instead of failing.
    keyless = "api_key" not in params and not os.environ.get("OPENAI_API_KEY")
    if keyless and params.get("api_base") and entry.litellm_model.startswith("openai/"):
        params["api_key"] = "none"
    return params


def count_prompt_tokens(entry: ModelEntry, messages: list[dict[str, Any]]) -> int:
    """Prompt tokens by litellm's counter (used when usage is absent, and for cost estimates)."""
    return int(litellm().token_counter(model=entry.litellm_model, messages=messages))


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        # An HTTP-date Retry-After; rare from LLM providers.
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


async def acomplete(
    entry: ModelEntry,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
    *,
    timeout_s: float = 120.0,
    prices: tuple[float, float] | None = None,
) -> CallResult:
    """One streamed chat completion through litellm, measured.

    Records the text, tokens (usage from the stream; counted when the provider sends none),
    cost from `token_prices(entry)` (raises ConfigError before calling when no price is known),
    total latency and time to first token. Provider errors come back as `CallResult.error` with
    the status and Retry-After; resolved API keys are scrubbed from everything returned.
    """
    in_price, out_price = prices or token_prices(entry)
    kwargs = call_kwargs(entry)
    secrets = secret_values(entry, kwargs)
    kwargs.update(params or {})
    if kwargs.get("timeout") is not None:  # the model's own limit (litellm_params.timeout)
        timeout_s = min(timeout_s, float(kwargs.pop("timeout")))
    kwargs.pop("timeout", None)
    result = CallResult()
    pieces: list[str] = []
    usage: Any = None
    start = time.perf_counter()
    try:
        stream = await litellm().acompletion(
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            timeout=timeout_s,
            max_retries=0,  # the runner retries, honouring Retry-After
            num_retries=0,
            **kwargs,
        )
        async for chunk in stream:
            choices = getattr(chunk, "choices", None)
            content = choices[0].delta.content if choices else None
            if content:
                if result.ttft_ms is None:
                    result.ttft_ms = (time.perf_counter() - start) * 1000
                pieces.append(content)
            usage = getattr(chunk, "usage", None) or usage
    except Exception as exc:  # any provider failure is an outcome, not a crash
        result.status = _status_of(exc)
        result.retry_after_s = _retry_after(exc)
        result.error = scrub(f"{type(exc).__name__}: {exc}", secrets)[:2000]
    result.latency_ms = (time.perf_counter() - start) * 1000
    result.text = scrub("".join(pieces), secrets)
    if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
        result.prompt_tokens = int(usage.prompt_tokens or 0)
        result.completion_tokens = int(usage.completion_tokens or 0)
    elif result.ok or pieces:  # a cut stream was still billed for what it sent
        result.prompt_tokens = count_prompt_tokens(entry, messages)
        result.completion_tokens = int(
            litellm().token_counter(model=entry.litellm_model, text=result.text)
        )
    result.cost_usd = result.prompt_tokens * in_price + result.completion_tokens * out_price
    return result


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    if isinstance(exc, TimeoutError):
        return 408
    return None


_warm = False


async def warm_up() -> None:
    """Pay litellm's lazy first-call imports now, so the first measured call is not 1-3 s slow.

    Two calls that never leave the machine: a mocked stream, and a real request to a loopback
    port that refuses connections (it loads the provider's HTTP path).
    """
    global _warm
    if _warm:
        return
    messages = [{"role": "user", "content": "warm-up"}]
    common: dict[str, Any] = {"model": "openai/warm-up", "api_key": "unused", "stream": True}
    common["stream_options"] = {"include_usage": True}
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        for extra in ({"mock_response": "ok"}, {"max_retries": 0, "num_retries": 0}):
            try:
                stream = await litellm().acompletion(
                    messages=messages, api_base=base, timeout=5, **common, **extra
                )
                async for _ in stream:
                    pass
            except Exception:  # the refused connection is the point
                pass
    _warm = True
