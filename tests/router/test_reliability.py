"""Retries, fallbacks, cooldown, streams cut midway, timeouts and clients that hang up."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from openai import OpenAI

from tests.router.support import Proxy
from tests.support.upstream import Upstream

HI = [{"role": "user", "content": "hello there"}]


def test_falls_back_along_the_plan_then_cools_the_failing_model(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    before = upstream.model_counts["fails"]
    raw = client.chat.completions.with_raw_response.create(model="chain", messages=HI)
    assert raw.headers["x-tradeoff-model"] == "backup"
    assert upstream.model_counts["fails"] == before + 1
    # "fails" now cools down: the next request goes straight to "backup"
    raw2 = client.chat.completions.with_raw_response.create(model="chain", messages=HI)
    assert raw2.headers["x-tradeoff-model"] == "backup"
    assert upstream.model_counts["fails"] == before + 1
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["attempts"], row["fallbacks"], row["model"], row["status"]) == (
        2,
        1,
        "backup",
        200,
    )
    metrics = httpx.get(f"{proxy.base}/metrics").text
    assert 'tradeoff_fallbacks_total{policy="chain"}' in metrics
    assert 'tradeoff_upstream_attempts_total{model="fails",outcome="error"}' in metrics


def test_retries_a_lone_model_after_a_transient_error(client: OpenAI, upstream: Upstream) -> None:
    out = client.chat.completions.create(model="flaky", messages=HI)  # 503 once, then fine
    assert out.choices[0].message.content == "echo: hello there"
    assert upstream.model_counts["flaky"] == 2


def test_rate_limit_everywhere_is_a_clean_429_with_retry_after(
    client: OpenAI, upstream: Upstream
) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="limited", messages=HI)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "0.2"
    assert caught.value.body["code"] == "upstream_rate_limited"  # type: ignore[index]
    assert upstream.model_counts["limited"] == 2  # one try + one retry after Retry-After


def test_upstream_verdict_on_a_bad_request_is_passed_on(client: OpenAI, upstream: Upstream) -> None:
    before = upstream.model_counts["rejects"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="rejects", messages=HI)
    assert caught.value.body["message"] == "scripted failure 400"  # type: ignore[index]
    assert upstream.model_counts["rejects"] == before + 1  # a client mistake is not retried


@pytest.mark.slow
def test_a_hanging_upstream_never_holds_a_request_past_the_timeout(
    client: OpenAI, proxy: Proxy
) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="hangs", messages=HI)
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert elapsed < proxy.settings.timeout_s + 1.0
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        list(client.chat.completions.create(model="hangs", messages=HI, stream=True))
    assert caught.value.status_code == 504
    assert time.monotonic() - started < proxy.settings.timeout_s + 1.0


def test_a_stream_that_outlives_the_timeout_ends_with_an_error_event(client: OpenAI) -> None:
    # "slowstream" sends a chunk every 0.2 s for 10 words: longer than the 2 s timeout.
    started = time.monotonic()
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="slowstream", messages=HI, stream=True):
            received.append(chunk)
    assert time.monotonic() - started < 3.0
    assert received  # part of the answer came through before the error event
    assert "timeout" in caught.value.message


def test_a_stream_cut_midway_ends_with_an_error_event(client: OpenAI, proxy: Proxy) -> None:
    texts = []
    with client.chat.completions.with_streaming_response.create(
        model="cut", messages=HI, stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        with pytest.raises(openai.APIError) as caught:
            for chunk in response.parse():
                texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts).strip() == "one two"
    assert "broke off" in caught.value.message
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["status"] == 502 and "broke off" in row["error"]


def test_a_raw_cut_stream_carries_an_openai_error_object(proxy: Proxy) -> None:
    body = {"model": "cut", "messages": HI, "stream": True}
    with httpx.stream("POST", f"{proxy.url}/chat/completions", json=body) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert "[DONE]" not in events[-1]
    import json

    error = json.loads(events[-1][len("data: ") :])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_stream_error"


def test_streaming_falls_back_before_the_first_byte(client: OpenAI, proxy: Proxy) -> None:
    proxy.state.policies.current  # noqa: B018 - the chain policy is [fails, backup, spare]
    stream = client.chat.completions.create(model="chain", messages=HI, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.strip() == "echo: hello there"


async def test_client_disconnect_cancels_the_upstream_call(
    proxy: Proxy, upstream: Upstream
) -> None:
    before = upstream.disconnects
    body = {"model": "slowstream", "messages": HI, "stream": True}
    url = f"{proxy.url}/chat/completions"
    async with (
        httpx.AsyncClient(timeout=5) as http,
        http.stream("POST", url, json=body) as response,
    ):
        async for _ in response.aiter_lines():
            break  # hang up after the first event
    for _ in range(100):
        if upstream.disconnects > before:
            break
        await asyncio.sleep(0.02)
    assert upstream.disconnects == before + 1
    rows = proxy.rows_eventually("requested_model = 'slowstream' AND status = 499")
    assert len(rows) == 1 and rows[0]["error"] == "client disconnected mid-stream"


async def test_client_disconnect_before_a_non_streaming_answer(proxy: Proxy) -> None:
    before = len(proxy.rows("requested_model = 'slow'"))
    body = {"model": "slow", "messages": HI}
    async with httpx.AsyncClient(timeout=0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{proxy.url}/chat/completions", json=body)
    await asyncio.sleep(0.4)
    rows = proxy.rows_eventually("requested_model = 'slow'", count=before + 1)
    assert len(rows) == before + 1 and rows[-1]["status"] == 499


def test_a_model_without_its_key_fails_over_with_the_variable_named(
    tmp_path, upstream: Upstream
) -> None:
    from tests.router.conftest import sync_client
    from tests.router.support import write_models, write_policy
    from tradeoff.router.settings import Settings

    config = write_models(
        tmp_path / "models.yaml",
        upstream.url,
        ["locked", "open"],
        locked={"api_key": "os.environ/TRADEOFF_TEST_MISSING_KEY"},
    )
    chain = write_policy(tmp_path / "p.json", "p", "test_ordered", {"models": ["locked", "open"]})
    settings = Settings(policy_paths=(chain,), config_path=config, db_path=tmp_path / "db")
    with Proxy(settings) as proxy:
        client = sync_client(proxy.url)
        raw = client.chat.completions.with_raw_response.create(model="p", messages=HI)
        assert raw.headers["x-tradeoff-model"] == "open"
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="locked", messages=HI)
        assert "TRADEOFF_TEST_MISSING_KEY" in caught.value.message
