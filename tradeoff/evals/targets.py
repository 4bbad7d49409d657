"""The upstreams: one `Target` per configured model, resolved once at startup.

A target knows how it is called (the direct OpenAI-compatible path or litellm), where, with which
headers, and its prices. Keys are resolved here, kept in memory only, and listed in `secrets` so
every outgoing error or log line can be scrubbed of them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

from tradeoff.evals.capabilities import Capabilities, capabilities
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.llm import cache_prices, call_kwargs, litellm, secret_values, token_prices
from tradeoff.evals.registry import ModelEntry, Registry
from tradeoff.evals.reviewers import HUMAN_TIER
from tradeoff.evals.usage import Usage
from tradeoff.evals.variants import request_params, system_prompt

log = logging.getLogger("tradeoff.router")

# litellm prefixes that speak OpenAI's protocol: called directly, without litellm's overhead.
DIRECT_PREFIXES = {"openai": "https://api.openai.com/v1", "hosted_vllm": None}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "hosted_vllm": "HOSTED_VLLM_API_KEY"}
ANTHROPIC_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Target:
    """How to reach one configured model."""

    name: str
    entry: ModelEntry
    direct: bool
    upstream_model: str  # the `model` sent upstream (the provider prefix stripped)
    url: str | None = None  # the chat-completions URL on the direct path
    headers: dict[str, str] = field(default_factory=dict)
    litellm_kwargs: dict[str, Any] = field(default_factory=dict)  # on the litellm path
    prices: tuple[float, float] | None = None  # USD per (input, output) token
    broken: str | None = None  # why the target cannot be called (e.g. a missing env var)
    secrets: tuple[str, ...] = ()
    # litellm_params.timeout (LiteLLM's key, seconds): one attempt's limit. Never sent upstream
    # on the direct path; litellm gets each attempt's own limit as its `timeout`.
    timeout_s: float | None = None
    # models.yaml `params` and `system_prompt` (a variant's settings): sent with every request.
    params: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    # USD per cached input token read, and per input token written to the prompt cache (None:
    # priced as ordinary input).
    cache_prices: tuple[float | None, float | None] = (None, None)
    # Client protocols besides chat completions this upstream takes as is (router/protocols):
    # "responses" (`api: responses`, or OpenAI's own API), "anthropic" (Anthropic's API, or
    # `api: anthropic`), each at its URL in `native_urls`, with `native_headers` for Anthropic.
    native_urls: dict[str, str] = field(default_factory=dict)
    native_headers: dict[str, str] = field(default_factory=dict)

    @property
    def provider_model(self) -> str:
        """The model's name in its provider's own API (litellm's prefix stripped)."""
        if self.direct or "/" not in self.upstream_model:
            return self.upstream_model
        return self.upstream_model.split("/", 1)[1]

    @property
    def base_url(self) -> str | None:
        """The OpenAI-compatible API root (direct path), for embeddings and completions."""
        if self.url is None:
            return None
        return self.url.removesuffix("/chat/completions")

    def speaks(self, protocol: str) -> bool:
        """Whether a request in `protocol` can go to this upstream as is (no translation): only
        to a plain entry, since a variant's params and system prompt are chat fields."""
        if protocol == "chat":
            return True
        return protocol in self.native_urls and not self.params and not self.system_prompt

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        if self.prices is None or prompt_tokens is None or completion_tokens is None:
            return None
        return prompt_tokens * self.prices[0] + completion_tokens * self.prices[1]

    def cost_of(self, usage: Usage) -> float | None:
        """USD for one answer's tokens: cached input at the cached rate, cache writes at the
        write rate (each the input rate when unknown), output (reasoning included) at the output
        rate."""
        if self.prices is None:
            return None
        read, write = self.cache_prices
        fresh = usage.prompt - usage.cached - usage.cache_write
        return (
            fresh * self.prices[0]
            + usage.cached * (self.prices[0] if read is None else read)
            + usage.cache_write * (self.prices[0] if write is None else write)
            + usage.completion * self.prices[1]
        )


def _provider(entry: ModelEntry) -> tuple[str | None, str]:
    """(litellm provider prefix or None, the model name after it)."""
    model = entry.litellm_model
    if "/" in model:
        prefix, rest = model.split("/", 1)
        return prefix, rest
    return None, model


def _is_direct(entry: ModelEntry) -> bool:
    forced = entry.extra.get("adapter")
    if forced in ("direct", "litellm"):
        return bool(forced == "direct")
    prefix, name = _provider(entry)
    if prefix is not None:
        return prefix in DIRECT_PREFIXES
    # A bare name is OpenAI's when litellm's bundled map says so ("gpt-4o"), or when it has an
    # api_base (an OpenAI-compatible host); otherwise litellm infers the provider (e.g. claude-*).
    if entry.api_base:
        return True
    info = litellm().model_cost.get(name) or {}
    return info.get("litellm_provider") == "openai"


def _prices(entry: ModelEntry) -> tuple[float, float] | None:
    try:
        return token_prices(entry)
    except ConfigError as exc:
        log.warning("%s; its requests are logged with cost NULL", exc)
        return None


def _cache_prices(entry: ModelEntry) -> tuple[float | None, float | None]:
    try:
        return cache_prices(entry)
    except (TypeError, ValueError):  # the registry checked the numbers: a bad litellm entry
        return None, None


def build_target(entry: ModelEntry) -> Target:
    """Resolve one entry; a missing key makes a `broken` target (it fails over), not a crash."""
    target = _resolve(entry)
    return replace(
        target,
        params=request_params(entry),
        system_prompt=system_prompt(entry),
        capabilities=capabilities(entry),
        cache_prices=_cache_prices(entry),
        **_native(entry, target),
    )


def _is_anthropic(entry: ModelEntry) -> bool:
    prefix, name = _provider(entry)
    if prefix is not None:
        return prefix == "anthropic"
    if entry.api_base:
        return False
    info = litellm().model_cost.get(name) or {}
    return info.get("litellm_provider") == "anthropic"


def _native(entry: ModelEntry, target: Target) -> dict[str, Any]:
    """Where the target takes the Responses API or Anthropic's Messages API as is."""
    api = entry.extra.get("api")
    urls: dict[str, str] = {}
    headers: dict[str, str] = {}
    if target.broken:
        return {}
    base = target.base_url
    if base is not None and (api == "responses" or (base == DIRECT_PREFIXES["openai"])):
        urls["responses"] = base + "/responses"
    if base is not None and api == "anthropic":
        urls["anthropic"] = base + "/messages"
        headers = {**target.headers, "anthropic-version": ANTHROPIC_VERSION}
        key = target.headers.get("authorization", "").removeprefix("Bearer ")
        if key:
            headers["x-api-key"] = key
    elif not target.direct and _is_anthropic(entry):
        params = entry.resolved_params()  # resolved once by _resolve already: cannot fail here
        root = str(params.get("api_base") or os.environ.get("ANTHROPIC_API_BASE") or "")
        root = (root or ANTHROPIC_BASE).rstrip("/").removesuffix("/messages")
        urls["anthropic"] = root + ("/messages" if root.endswith("/v1") else "/v1/messages")
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        headers.update({str(k): str(v) for k, v in (params.get("extra_headers") or {}).items()})
        secret = str(params.get("api_key") or os.environ.get("ANTHROPIC_API_KEY") or "")
        if secret:
            headers["x-api-key"] = secret
            if secret not in target.secrets:
                return {"native_urls": urls, "native_headers": headers,
                        "secrets": (*target.secrets, secret)}  # fmt: skip
    return {"native_urls": urls, "native_headers": headers}


def _resolve(entry: ModelEntry) -> Target:
    direct = _is_direct(entry)
    prefix, name = _provider(entry)
    prices = _prices(entry)
    raw_timeout = entry.litellm_params.get("timeout")
    timeout_s = float(raw_timeout) if raw_timeout is not None else None  # checked by the registry
    try:
        params = entry.resolved_params()
    except ConfigError as exc:
        return Target(
            entry.name, entry, direct, name, prices=prices, broken=str(exc), timeout_s=timeout_s
        )
    key = params.get("api_key")
    secrets = tuple(secret_values(entry, params))
    if not direct:
        # `model` comes from the request body the upstream adapter builds.
        kwargs = {k: v for k, v in call_kwargs(entry).items() if k != "model"}
        return Target(
            entry.name,
            entry,
            False,
            entry.litellm_model,
            litellm_kwargs=kwargs,
            prices=prices,
            secrets=secrets,
            timeout_s=timeout_s,
        )
    provider = prefix or "openai"
    if key is None and provider in DEFAULT_KEY_ENV:
        key = os.environ.get(DEFAULT_KEY_ENV[provider])
        secrets += (key,) if key else ()
    base = params.get("api_base") or DIRECT_PREFIXES.get(provider)
    if not base:
        broken = f"model {entry.name!r} ({entry.litellm_model}) needs litellm_params.api_base"
        return Target(
            entry.name, entry, True, name, prices=prices, broken=broken, timeout_s=timeout_s
        )
    headers = {"content-type": "application/json"}
    headers.update({str(k): str(v) for k, v in (params.get("extra_headers") or {}).items()})
    if key:
        headers["authorization"] = f"Bearer {key}"
    url = str(base).rstrip("/") + "/chat/completions"
    return Target(
        entry.name,
        entry,
        True,
        name,
        url,
        headers,
        prices=prices,
        secrets=secrets,
        timeout_s=timeout_s,
    )


def build_targets(registry: Registry) -> dict[str, Target]:
    """A target for every model an upstream answers: a human review tier (evals/reviewers.py)
    is never called, so it has none."""
    return {entry.name: build_target(entry) for entry in registry if entry.tier != HUMAN_TIER}
