"""The adapter: which models take the direct path, the litellm path for real, and cascades."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.registry import parse_entry
from tradeoff.evals.targets import build_target
from tradeoff.evals.upstream import Stream
from tradeoff.router.settings import Settings

HI = [{"role": "user", "content": "hello there"}]


def entry(model: str, **params: object) -> object:
    return parse_entry(
        {"model_name": "m", "litellm_params": {"model": model, **params}, "tier": "frontier"}, "t"
    )


def test_openai_compatible_models_take_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-key")
    vllm = build_target(entry("hosted_vllm/llama", api_base="http://127.0.0.1:8000/v1"))  # type: ignore[arg-type]
    assert vllm.direct and vllm.upstream_model == "llama"
    assert vllm.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert "authorization" not in vllm.headers  # vLLM without --api-key needs none
    gpt = build_target(entry("gpt-4o-mini"))  # type: ignore[arg-type]
    assert gpt.direct and gpt.url == "https://api.openai.com/v1/chat/completions"
    assert gpt.headers["authorization"] == "Bearer sk-test-openai-key"
    assert gpt.secrets == ("sk-test-openai-key",)
    assert gpt.prices is not None and gpt.prices[0] > 0  # litellm's bundled price map
    claude = build_target(entry("anthropic/claude-3-5-sonnet-20240620"))  # type: ignore[arg-type]
    assert not claude.direct  # another protocol: litellm
    no_base = build_target(entry("hosted_vllm/llama"))  # type: ignore[arg-type]
    assert no_base.broken is not None and "api_base" in no_base.broken


def test_litellm_path_keeps_limits_out_of_the_call() -> None:
    target = build_target(entry("anthropic/claude-3-5-sonnet-20240620", rpm=60, max_concurrency=4))  # type: ignore[arg-type]
    assert not target.direct
    assert "rpm" not in target.litellm_kwargs and "max_concurrency" not in target.litellm_kwargs


async def test_stream_drops_only_the_usage_chunk_the_client_did_not_ask_for() -> None:
    sent = [
        b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n',
        b'data: ["not", "an", "object", "usage"]\n\n',
        b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n\n',
        b"data: [DONE]\n\n",
    ]

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in sent:
            yield chunk

    async def close() -> None:
        pass

    stream = Stream(chunks(), close, keep_usage=False)
    await stream.prime()
    assert [event async for event in stream.events()] == [sent[0], sent[1], sent[3]]
    assert (stream.prompt_tokens, stream.completion_tokens) == (3, 1)


@pytest.fixture(scope="module")
def litellm_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Upstream]]:
    """Models forced through `litellm.acompletion` (the path for non-OpenAI protocols)."""
    import os

    work: Path = tmp_path_factory.mktemp("litellm")
    rules = [
        Rule(model="lt-broken", status=503),
        Rule(model="lt-cut", cut_stream_after=1, reply="p q r s"),
        Rule(model="prose", reply="certainly not json"),
        Rule(model="jsonish", reply='{"answer": 4}'),
    ]
    os.environ["TRADEOFF_TEST_LITELLM_KEY"] = "sk-litellm-path-secret"
    with Upstream(rules) as upstream:
        via = {"adapter": "litellm", "api_key": "os.environ/TRADEOFF_TEST_LITELLM_KEY"}
        names = ["lt-ok", "lt-broken", "lt-cut", "prose", "jsonish"]
        config = write_models(work / "models.yaml", upstream.url, names)
        import yaml

        doc = yaml.safe_load(config.read_text())
        for model in doc["model_list"]:
            if model["model_name"].startswith("lt-"):
                model["adapter"] = via["adapter"]
                model["litellm_params"]["model"] = "openai/" + model["model_name"]
                model["litellm_params"]["api_key"] = via["api_key"]
        config.write_text(yaml.safe_dump(doc))
        chain = write_policy(
            work / "chain.json", "lt-chain", "test_ordered", {"models": ["lt-broken", "lt-ok"]}
        )
        cascade = write_policy(
            work / "cascade.json",
            "cascade",
            "test_ordered",
            {"models": ["prose", "jsonish"], "verifier": "json_valid"},
        )
        best_of = write_policy(
            work / "best.json",
            "best-of-3",
            "best_of_k",
            {"model": "prose", "k": 3, "verifier": "json_valid", "fallback": ["jsonish"]},
        )
        best_json = write_policy(
            work / "best2.json",
            "best-json",
            "best_of_k",
            {"model": "jsonish", "k": 3, "verifier": "json_valid", "fallback": ["prose"]},
        )
        settings = Settings(
            policy_paths=(chain, cascade, best_of, best_json),
            config_path=config,
            db_path=work / "db.duckdb",
            timeout_s=5,
            retries=0,
            log_flush_s=0.05,
        )
        with Proxy(settings) as proxy:
            yield proxy, upstream
    del os.environ["TRADEOFF_TEST_LITELLM_KEY"]


def test_litellm_path_answers_streams_and_falls_back(
    litellm_proxy: tuple[Proxy, Upstream],
) -> None:
    proxy, upstream = litellm_proxy
    assert not proxy.state.targets["lt-ok"].direct
    client: OpenAI = sync_client(proxy.url)
    raw = client.chat.completions.with_raw_response.create(model="lt-ok", messages=HI)
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert float(raw.headers["x-tradeoff-cost-usd"]) > 0
    assert upstream.headers[-1]["authorization"] == "Bearer sk-litellm-path-secret"
    stream = client.chat.completions.create(model="lt-ok", messages=HI, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip() == "echo: hello there"
    raw = client.chat.completions.with_raw_response.create(model="lt-chain", messages=HI)
    assert raw.headers["x-tradeoff-model"] == "lt-ok"
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="lt-cut", messages=HI, stream=True))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="lt-broken", messages=HI)
    assert caught.value.status_code == 502
    assert "sk-litellm-path-secret" not in caught.value.response.text


def test_cascade_escalates_when_the_verifier_rejects(
    litellm_proxy: tuple[Proxy, Upstream],
) -> None:
    proxy, upstream = litellm_proxy
    client = sync_client(proxy.url)
    raw = client.chat.completions.with_raw_response.create(model="cascade", messages=HI)
    assert raw.parse().choices[0].message.content == '{"answer": 4}'
    assert raw.headers["x-tradeoff-model"] == "jsonish"
    assert upstream.model_counts["prose"] == 1 and upstream.model_counts["jsonish"] == 1
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    # both answers were paid for: 2+3 and 2+3 tokens (prose: 3 words; json: 3 "words")
    assert row["fallbacks"] == 1 and row["prompt_tokens"] == 4
    assert row["cost_usd"] == pytest.approx((2 + 2) * 1e-6 + (3 + 2) * 2e-6)


def test_best_of_k_samples_then_escalates(litellm_proxy: tuple[Proxy, Upstream]) -> None:
    proxy, upstream = litellm_proxy
    client = sync_client(proxy.url)
    # every sample of "prose" fails json_valid: escalate to "jsonish"
    raw = client.chat.completions.with_raw_response.create(model="best-of-3", messages=HI)
    out = raw.parse()
    assert raw.headers["x-tradeoff-model"] == "jsonish"
    assert [c.message.content for c in out.choices] == ['{"answer": 4}']
    sampled = [r for r in upstream.requests if r["model"] == "prose"][-1]
    assert sampled["n"] == 3
    # an accepted sample is returned alone, as the client asked for one choice
    raw = client.chat.completions.with_raw_response.create(model="best-json", messages=HI)
    assert raw.headers["x-tradeoff-model"] == "jsonish"
    assert len(raw.parse().choices) == 1
    assert upstream.requests[-1]["n"] == 3
