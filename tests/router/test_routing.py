"""Routing by policy, pass-through, headers, parameters, the info endpoints (official client)."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from tests.router.conftest import async_client
from tests.router.support import Proxy
from tests.support.upstream import Upstream

HI = [{"role": "user", "content": "hello there"}]


def test_policy_routes_and_headers_name_the_choice(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="cheap-router", messages=HI)
    out = raw.parse()
    assert out.choices[0].message.content == "echo: hello there"
    assert raw.headers["x-tradeoff-model"] == "cheap"
    assert raw.headers["x-tradeoff-policy"] == "cheap-router"
    request_id = raw.headers["x-tradeoff-request-id"]
    # usage from the stand-in: 2 prompt words, 3 reply words at $1/$2 per 1M tokens
    assert float(raw.headers["x-tradeoff-cost-usd"]) == pytest.approx(2e-6 + 3 * 2e-6)
    assert upstream.requests[-1]["model"] == "cheap"  # the provider prefix is stripped
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert (row["policy"], row["model"], row["requested_model"]) == (
        "cheap-router",
        "cheap",
        "cheap-router",
    )
    assert (row["status"], row["attempts"], row["fallbacks"]) == (200, 1, 0)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2, 3)
    assert row["cost_usd"] == pytest.approx(8e-6)
    assert row["baseline_cost_usd"] == pytest.approx(8e-6)  # same prices for the baseline
    assert row["prompt"] is None  # no --log-prompts
    assert row["route_reason"] == "single model cheap"  # the plan's own reason


def test_the_log_says_why_each_request_went_where_it_did(client: OpenAI, proxy: Proxy) -> None:
    """The plan's reason for a routed request, and pass-through for a named model."""
    routed = client.chat.completions.with_raw_response.create(
        model="by-task", messages=HI, extra_headers={"x-tradeoff-task": "math"}
    )
    direct = client.chat.completions.with_raw_response.create(model="strong", messages=HI)
    reasons = {}
    for raw in (routed, direct):
        (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
        reasons[row["requested_model"]] = row["route_reason"]
    assert reasons == {
        "by-task": "task math -> strong",
        "strong": "pass-through: the client named this model",
    }


def test_task_hint_from_header_or_metadata(client: OpenAI, upstream: Upstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="by-task", messages=HI, extra_headers={"x-tradeoff-task": "math"}
    )
    assert raw.headers["x-tradeoff-model"] == "strong"
    raw = client.chat.completions.with_raw_response.create(
        model="by-task", messages=HI, metadata={"task": "math", "team": "a"}
    )
    assert raw.headers["x-tradeoff-model"] == "strong"
    # the task hint is ours; the rest of metadata still reaches the upstream
    assert upstream.requests[-1]["metadata"] == {"team": "a"}
    raw = client.chat.completions.with_raw_response.create(model="by-task", messages=HI)
    assert raw.headers["x-tradeoff-model"] == "cheap"


def test_configured_model_passes_through_with_parameters(
    client: OpenAI, upstream: Upstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="strong",
        messages=[{"role": "system", "content": "be brief"}, *HI],
        temperature=0.2,
        max_tokens=7,
        n=2,
        stop=["\n"],
        user="u-1",
        response_format={"type": "json_object"},
    )
    assert raw.headers["x-tradeoff-model"] == "strong"
    assert "x-tradeoff-policy" not in raw.headers
    assert len(raw.parse().choices) == 2
    sent = upstream.requests[-1]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 7 and sent["n"] == 2
    assert sent["stop"] == ["\n"] and sent["user"] == "u-1"
    assert sent["response_format"] == {"type": "json_object"}


def test_tools_pass_through_both_ways(client: OpenAI, upstream: Upstream) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    out = client.chat.completions.create(
        model="tooly",
        messages=HI,
        tools=tools,
        tool_choice="auto",  # type: ignore[arg-type]
    )
    call = out.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert upstream.requests[-1]["tools"] == tools
    assert upstream.requests[-1]["tool_choice"] == "auto"


def test_streaming_relays_chunks_and_logs_usage(client: OpenAI, proxy: Proxy) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="cheap-router", messages=HI, stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        assert response.headers["x-tradeoff-model"] == "cheap"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "echo: hello there"
    # the proxy asks upstream for usage but does not add the extra chunk the client did not ask for
    assert all(c.choices for c in chunks)
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["stream"] and row["status"] == 200
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2, 3)
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_streaming_usage_chunk_kept_when_asked(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="cheap", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 3


async def test_async_client_concurrent_requests(proxy: Proxy) -> None:
    import asyncio

    client = async_client(proxy.url)
    prompts = [f"question {i}" for i in range(20)]
    outs = await asyncio.gather(
        *(
            client.chat.completions.create(
                model="cheap-router", messages=[{"role": "user", "content": p}]
            )
            for p in prompts
        )
    )
    assert [o.choices[0].message.content for o in outs] == [f"echo: {p}" for p in prompts]
    stream = await client.chat.completions.create(model="cheap", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip() == "echo: hello there"
    await client.close()


def test_models_health_and_metrics(client: OpenAI, proxy: Proxy) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"cheap-router", "by-task", "chain", "cheap", "strong"} <= ids
    health = httpx.get(f"{proxy.base}/health").json()
    assert health["status"] == "ok"
    assert {p["name"] for p in health["policies"]} == {"cheap-router", "by-task", "chain"}
    client.chat.completions.create(model="cheap", messages=HI)
    text = httpx.get(f"{proxy.base}/metrics").text
    assert "# TYPE tradeoff_request_duration_seconds histogram" in text
    assert 'tradeoff_upstream_attempts_total{model="cheap",outcome="ok"}' in text
    assert 'tradeoff_request_duration_seconds_bucket{le="+Inf"}' in text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith('tradeoff_requests_total{policy="",model="cheap",status="200"')
    )
    assert float(line.split()[-1]) >= 1
    assert 'tradeoff_cost_usd_total{model="cheap"}' in text
