"""litellm, imported in one place: prices, token counts and the warm-up of its call path.

litellm is imported lazily, with `LITELLM_LOCAL_MODEL_COST_MAP=True` so its price map comes
from the installed package and never from the network. Calls go through `evals.upstream`
(litellm only for providers that do not speak OpenAI's protocol); `evals.call` measures them.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from typing import Any

from tradeoff.evals.errors import ConfigError
from tradeoff.evals.registry import SECRET_KEYS, ModelEntry


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


def cache_prices(entry: ModelEntry) -> tuple[float | None, float | None]:
    """USD per (cached input token read, input token written to the cache): the entry's
    `cache_read_input_token_cost` / `cache_creation_input_token_cost`, else litellm's map; None
    where neither knows (such tokens are then priced as ordinary input)."""
    params = entry.litellm_params
    keys = ("cache_read_input_token_cost", "cache_creation_input_token_cost")
    info: dict[str, Any] = {}
    if any(params.get(k) is None for k in keys) and entry.price_override is None:
        info = litellm().model_cost.get(entry.litellm_model) or {}
        if not info and "/" in entry.litellm_model:
            info = litellm().model_cost.get(entry.litellm_model.split("/", 1)[1]) or {}
    found = [params.get(k, info.get(k)) for k in keys]
    read, write = (None if v is None else float(v) for v in found)
    return read, write


# -- call arguments ----------------------------------------------------------------------------

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
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
    }
)


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


def count_completion_tokens(entry: ModelEntry, text: str) -> int:
    """Answer tokens by litellm's counter (when the provider sent no usage)."""
    return int(litellm().token_counter(model=entry.litellm_model, text=text))


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
