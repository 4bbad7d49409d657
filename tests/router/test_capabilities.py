"""Capability-aware routing: a plan skips models that cannot serve a request (tools, vision,
JSON schema, output limit, context size), on every protocol; with none left, a 400 naming
what is missing. And where capabilities come from: models.yaml, variants, litellm's info."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Upstream
from tradeoff.evals.capabilities import Capabilities, capabilities
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.registry import load_registry, parse_entry
from tradeoff.router.settings import Settings

SMALL = {"tools": False, "vision": False, "json_schema": False, "max_output_tokens": 100,
         "context_window": 60}  # fmt: skip
TOOLS: Any = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
HI = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream([]) as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work: Path = tmp_path_factory.mktemp("capabilities")
    config = write_models(
        work / "models.yaml",
        upstream.url,
        ["k-small", "k-big"],
        entries={"k-small": {"capabilities": SMALL}, "k-big": {"capabilities": {"tools": True}}},
        **{"k-small": {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}},
    )
    policies = (
        write_policy(
            work / "o.json", "k-ordered", "test_ordered", {"models": ["k-small", "k-big"]}
        ),
        write_policy(work / "s.json", "k-single", "single", {"model": "k-small"}),
    )
    settings = Settings(
        policy_paths=policies, config_path=config, db_path=work / "db.duckdb", log_flush_s=0.05
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)


def _sent_to(upstream: Upstream, model: str) -> list[dict[str, Any]]:
    return [r for r in upstream.requests if r.get("model") == model]


def test_the_cheapest_model_without_tools_never_receives_a_request_with_tools(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="x", max_retries=0)
    for i in range(3):
        ask = [{"role": "user", "content": f"call the tool {i}"}]
        out = client.chat.completions.with_raw_response.create(
            model="k-ordered",
            messages=ask,
            tools=TOOLS,  # type: ignore[arg-type]
        )
        assert out.headers["x-tradeoff-model"] == "k-big"
        (row,) = proxy.rows_eventually("request_id = ?", [out.headers["x-tradeoff-request-id"]])
        assert row["route_reason"].endswith("; skipped k-small (lacking what the request needs)")
        stream = client.chat.completions.create(
            model="k-ordered",
            messages=ask,
            tools=TOOLS,
            stream=True,  # type: ignore[arg-type]
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        answer = client.responses.with_raw_response.create(
            model="k-ordered", input=f"tool {i}",
            tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        )  # fmt: skip
        assert answer.headers["x-tradeoff-model"] == "k-big"
        message = claude.messages.with_raw_response.create(
            model="k-ordered", max_tokens=20, messages=[{"role": "user", "content": "go"}],
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
        )  # fmt: skip
        assert message.headers["x-tradeoff-model"] == "k-big"
        # A conversation that already holds tool turns needs tools too.
        history = [*ask, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}]  # fmt: skip
        plain = client.chat.completions.with_raw_response.create(
            model="k-ordered", messages=history
        )  # type: ignore[arg-type]
        assert plain.headers["x-tradeoff-model"] == "k-big"
        cheap = client.chat.completions.with_raw_response.create(model="k-ordered", messages=HI)
        assert cheap.headers["x-tradeoff-model"] == "k-small"  # without tools: the cheap one
    small = _sent_to(upstream, "k-small")
    assert len(small) == 3
    assert not any("tools" in r or any(m["role"] == "tool" for m in r["messages"]) for r in small)
    assert len(_sent_to(upstream, "k-big")) == 15


def test_with_no_capable_model_a_400_names_what_is_missing(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="k-single", messages=HI, tools=TOOLS)
    assert "k-small lacks tools" in caught.value.message
    assert caught.value.body["param"] == "tools"  # type: ignore[index]
    assert caught.value.body["code"] == "model_cannot_serve"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:  # a configured model, named directly
        client.chat.completions.create(model="k-small", messages=HI, tools=TOOLS)
    assert "model 'k-small' cannot serve this request: k-small lacks tools" in caught.value.message
    response = httpx.post(
        f"{proxy.base}/v1/messages",
        json={"model": "k-single", "max_tokens": 5, "messages": HI,
              "tools": [{"name": "f", "input_schema": {}}]},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "lacks tools" in response.json()["error"]["message"]
    assert len(upstream.requests) == before  # nothing was sent


IMAGE = [
    {"type": "text", "text": "what is this?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}


@pytest.mark.parametrize(
    ("extra", "lacking"),
    [
        ({"messages": [{"role": "user", "content": IMAGE}]}, "vision"),
        ({"response_format": SCHEMA}, "json_schema"),
        ({"max_tokens": 500}, "max_output_tokens >= 500"),
        ({"messages": [{"role": "user", "content": "word " * 300}]}, "a context window of"),
    ],
)
def test_each_capability_is_checked(proxy: Proxy, extra: dict[str, Any], lacking: str) -> None:
    body = {"model": "k-ordered", "messages": HI, **extra}
    answered = httpx.post(f"{proxy.url}/chat/completions", json=body)
    assert answered.status_code == 200 and answered.headers["x-tradeoff-model"] == "k-big"
    refused = httpx.post(f"{proxy.url}/chat/completions", json={**body, "model": "k-single"})
    assert refused.status_code == 400 and lacking in refused.json()["error"]["message"]


def test_a_short_prompt_fits_a_small_window_without_counting(proxy: Proxy) -> None:
    body = {"model": "k-single", "messages": [{"role": "user", "content": "short " * 5}]}
    assert httpx.post(f"{proxy.url}/chat/completions", json=body).status_code == 200


def test_capabilities_come_from_models_yaml_variants_and_litellm(tmp_path: Path) -> None:
    doc = {"model_list": [{
        "model_name": "local", "tier": "local",
        "litellm_params": {"model": "hosted_vllm/q", "api_base": "http://h/v1"},
        "capabilities": {"tools": False, "context_window": 8000},
        "variants": [{"name": "long", "capabilities": {"context_window": 32000}},
                     {"name": "plain", "params": {"temperature": 0}}],
    }]}  # fmt: skip
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(doc))
    registry = load_registry(tmp_path / "models.yaml")
    assert capabilities(registry.entries["local"]) == Capabilities(tools=False, context_window=8000)
    assert capabilities(registry.entries["local:long"]) == Capabilities(
        tools=False, context_window=32000
    )
    assert capabilities(registry.entries["local:plain"]) == capabilities(registry.entries["local"])
    gpt = capabilities(parse_entry({"model_name": "g", "litellm_params": {"model": "gpt-4o"}}, "t"))
    assert gpt.tools is True and gpt.vision is True and gpt.context_window == 128000
    mine = parse_entry(
        {
            "model_name": "g",
            "litellm_params": {"model": "gpt-4o"},
            "capabilities": {"vision": False},
        },
        "t",
    )
    assert capabilities(mine).vision is False and capabilities(mine).tools is True
    for bad in ({"tools": "yes"}, {"context_window": 0}, {"telepathy": True}, ["tools"]):
        with pytest.raises(ConfigError, match="capabilit"):
            parse_entry(
                {"model_name": "b", "litellm_params": {"model": "x/y"}, "capabilities": bad}, "t"
            )
    with pytest.raises(ConfigError, match="api"):
        parse_entry({"model_name": "b", "litellm_params": {"model": "x/y"}, "api": "soap"}, "t")
