"""Cost by token kind, on every route: cached input at the model's cached rate (litellm's
`cache_read_input_token_cost`, or models.yaml's), reasoning as output; the row keeps the kinds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from openai import OpenAI

from tests.router.conftest import sync_client
from tests.router.support import Proxy
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.llm import litellm
from tradeoff.evals.usage import Usage, from_anthropic, from_chat, from_responses
from tradeoff.router.settings import Settings

# The stand-in reports 1000 prompt tokens of which 800 were cached, and 50 reasoning tokens
# within 52 output tokens ("echo: hi" + 50).
CACHED = dict(prompt_tokens=1000, cached_tokens=800, reasoning_tokens=50)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream([Rule(**CACHED)]) as up:  # type: ignore[arg-type]
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work: Path = tmp_path_factory.mktemp("kinds")
    models = [
        # gpt-4o's prices, cached rate included, from litellm's bundled map
        {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url,
                                                 "api_key": "os.environ/KINDS_KEY"}},
        # own prices, own cached rate
        {"model_name": "own", "litellm_params": {
            "model": "hosted_vllm/own", "api_base": upstream.url, "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6, "cache_read_input_token_cost": 1e-7}},
        # own prices, no cached rate: cached tokens cost the input rate
        {"model_name": "flat", "litellm_params": {
            "model": "hosted_vllm/flat", "api_base": upstream.url, "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6}},
    ]  # fmt: skip
    (work / "models.yaml").write_text(yaml.safe_dump({"model_list": models}))
    settings = Settings(
        config_path=work / "models.yaml", db_path=work / "db.duckdb", log_flush_s=0.05
    )
    import os

    os.environ["KINDS_KEY"] = "sk-kinds-test"
    with Proxy(settings) as running:
        yield running
    del os.environ["KINDS_KEY"]


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)


def expected(model: str) -> float:
    if model == "gpt":
        info = litellm().model_cost["gpt-4o"]
        fresh, read, out = (info[k] for k in ("input_cost_per_token",
                            "cache_read_input_token_cost", "output_cost_per_token"))  # fmt: skip
        assert read < fresh
    else:
        fresh, read, out = 1e-6, (1e-7 if model == "own" else 1e-6), 2e-6
    return 200 * fresh + 800 * read + 52 * out


def row_of(proxy: Proxy, request_id: str) -> dict[str, Any]:
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    return row


@pytest.mark.parametrize("model", ["gpt", "own", "flat"])
def test_cached_tokens_are_priced_at_the_cached_rate(
    client: OpenAI, proxy: Proxy, model: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    row = row_of(proxy, raw.headers["x-tradeoff-request-id"])
    assert (row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"]) == (1000, 800, 0)
    assert (row["completion_tokens"], row["reasoning_tokens"]) == (52, 50)
    assert row["cost_usd"] == pytest.approx(expected(model))
    assert float(raw.headers["x-tradeoff-cost-usd"]) == pytest.approx(expected(model))


def test_every_route_prices_the_kinds(client: OpenAI, proxy: Proxy) -> None:
    ids = []
    with client.chat.completions.with_streaming_response.create(
        model="own", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as response:
        list(response.parse())
        ids.append(response.headers["x-tradeoff-request-id"])
    raw = client.responses.with_raw_response.create(model="own", input="hi")
    usage = raw.parse().usage
    assert usage is not None and usage.input_tokens_details.cached_tokens == 800
    assert usage.output_tokens_details.reasoning_tokens == 50
    ids.append(raw.headers["x-tradeoff-request-id"])
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="x", max_retries=0)
    message = claude.messages.with_raw_response.create(
        model="own", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    out = message.parse().usage
    assert (out.input_tokens, out.cache_read_input_tokens) == (200, 800)
    ids.append(message.headers["x-tradeoff-request-id"])
    for request_id in ids:
        row = row_of(proxy, request_id)
        assert (row["cached_tokens"], row["reasoning_tokens"]) == (800, 50), row["protocol"]
        assert row["cost_usd"] == pytest.approx(expected("own"))


def test_usage_kinds_from_each_api() -> None:
    chat = {"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}  # fmt: skip
    assert from_chat(chat) == Usage(10, 5, cached=4, reasoning=2)
    litellm_anthropic = {"prompt_tokens": 10, "completion_tokens": 5,
                         "cache_read_input_tokens": 4, "cache_creation_input_tokens": 3}  # fmt: skip
    assert from_chat(litellm_anthropic) == Usage(10, 5, cached=4, cache_write=3)
    responses = {"input_tokens": 10, "output_tokens": 5,
                 "input_tokens_details": {"cached_tokens": 4},
                 "output_tokens_details": {"reasoning_tokens": 2}}  # fmt: skip
    assert from_responses(responses) == Usage(10, 5, cached=4, reasoning=2)
    anthropic_usage = {"input_tokens": 3, "cache_read_input_tokens": 4,
                       "cache_creation_input_tokens": 3, "output_tokens": 5}  # fmt: skip
    assert from_anthropic(anthropic_usage) == Usage(10, 5, cached=4, cache_write=3)
    assert from_chat({"prompt_tokens": 1e30, "completion_tokens": 1}) is None
    assert from_chat({"prompt_tokens": 2, "completion_tokens": 1,
                      "prompt_tokens_details": {"cached_tokens": 9}}) == Usage(2, 1, cached=2)  # fmt: skip
