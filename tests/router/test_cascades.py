"""Cascades on agent traffic: streams are verified before the client sees the cheap answer, a
tool call is judged by its arguments against its tool's schema, the baseline's cost is counted
once per request, and an upstream's refusal reaches every protocol, streamed or not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from openai import OpenAI

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import Settings

PROSE, JSON = "certainly not json", '{"answer": 4}'
REFUSAL = "I cannot help with that."
HI: Any = [{"role": "user", "content": "hello there"}]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TOOLS: Any = [{"type": "function", "function": {"name": "get_weather",
                                                "parameters": WEATHER_SCHEMA}}]  # fmt: skip
PROMPT_TOKENS = 10  # every scripted answer's, so costs are easy to state
BASE = (1e-5, 2e-5)  # the baseline's prices (the others: $1 / $2 per 1M)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="cs-prose", reply=PROSE, prompt_tokens=PROMPT_TOKENS),
        Rule(model="cs-json", reply=JSON, prompt_tokens=PROMPT_TOKENS),
        Rule(model="cs-tool", prompt_tokens=PROMPT_TOKENS, reply="x",
             tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}),
        Rule(model="cs-badtool", prompt_tokens=PROMPT_TOKENS, reply="x",
             tool_call={"name": "get_weather", "arguments": {"city": 75}}),
        Rule(model="cs-refuses", refusal=REFUSAL, prompt_tokens=PROMPT_TOKENS),
    ]  # fmt: skip
    with Upstream(rules) as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work: Path = tmp_path_factory.mktemp("cascades")
    names = ["cs-prose", "cs-json", "cs-tool", "cs-badtool", "cs-refuses", "cs-base"]
    base: dict[str, Any] = {"input_cost_per_token": BASE[0], "output_cost_per_token": BASE[1]}
    config = write_models(work / "models.yaml", upstream.url, names, **{"cs-base": base})

    def cascade(name: str, models: list[str]) -> Path:
        params = {"models": models, "verifier": "json_valid"}
        return write_policy(work / f"{name}.json", name, "test_ordered", params, baseline="cs-base")

    settings = Settings(
        policy_paths=(
            cascade("escalates", ["cs-prose", "cs-json"]),
            cascade("accepts", ["cs-json", "cs-prose"]),
            cascade("tools", ["cs-tool", "cs-json"]),
            cascade("bad-tools", ["cs-badtool", "cs-json"]),
            cascade("three", ["cs-prose", "cs-badtool", "cs-json"]),
            write_policy(work / "r.json", "refuses", "single", {"model": "cs-refuses"}),
        ),
        config_path=config,
        db_path=work / "db.duckdb",
        timeout_s=10.0,
        retries=0,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)


def row_of(proxy: Proxy, headers: Any) -> dict[str, Any]:
    (row,) = proxy.rows_eventually("request_id = ?", [headers["x-tradeoff-request-id"]])
    return row


def test_a_streamed_cascade_is_verified_before_the_client_sees_it(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    """The cheap answer fails the verifier: the client's stream is the escalated one, never a
    byte of the rejected answer, and both are paid for."""
    with client.chat.completions.with_streaming_response.create(
        model="escalates",
        messages=HI,
        stream=True,
    ) as response:
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        )
        headers = response.headers
    assert text.strip() == JSON and PROSE not in text
    assert headers["x-tradeoff-model"] == "cs-json"
    row = row_of(proxy, headers)
    assert (row["model"], row["fallbacks"], row["stream"]) == ("cs-json", 1, True)
    assert row["prompt_tokens"] == 2 * PROMPT_TOKENS  # both answers paid for
    assert row["ttft_ms"] is not None


def test_a_streamed_cascade_keeps_an_accepted_cheap_answer(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    dear = upstream.model_counts["cs-prose"]
    stream = client.chat.completions.create(model="accepts", messages=HI, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip() == JSON
    assert upstream.model_counts["cs-prose"] == dear  # never asked


def test_every_protocols_stream_is_verified(proxy: Proxy) -> None:
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="k", max_retries=0)
    with claude.messages.stream(model="escalates", max_tokens=50, messages=HI) as stream:
        assert "".join(stream.text_stream).strip() == JSON
    responses = sync_client(proxy.url).responses
    with responses.stream(model="escalates", input="hello there") as events:
        assert events.get_final_response().output_text.strip() == JSON


def test_a_cascade_of_three_verifies_each_step(client: OpenAI, proxy: Proxy) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="three",
        messages=HI,
        stream=True,
        tools=TOOLS,
    ) as response:
        chunks = list(response.parse())
        headers = response.headers
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == JSON and headers["x-tradeoff-model"] == "cs-json"
    assert row_of(proxy, headers)["fallbacks"] == 2


def test_a_tool_call_is_verified_by_its_tools_schema(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    """A grader reads text; a tool call is judged by its arguments: valid ones are kept (the
    agent loop stays on the cheap model), ones that break the schema escalate."""
    raw = client.chat.completions.with_raw_response.create(
        model="tools",
        messages=HI,
        tools=TOOLS,
    )
    assert raw.headers["x-tradeoff-model"] == "cs-tool"
    assert raw.parse().choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index, union-attr]
    bad = client.chat.completions.with_raw_response.create(
        model="bad-tools",
        messages=HI,
        tools=TOOLS,
    )
    assert bad.headers["x-tradeoff-model"] == "cs-json"
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="k", max_retries=0)
    tools: Any = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    with claude.messages.stream(
        model="tools",
        max_tokens=50,
        messages=HI,
        tools=tools,
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"city": "Paris"}  # type: ignore[union-attr]


def test_the_baseline_cost_is_counted_once_per_request(proxy: Proxy) -> None:
    """An escalated request paid for two answers; the baseline would have given one: what it
    would have charged for the answer served, not for every attempt."""
    for stream in (False, True):
        body = {"model": "bad-tools", "messages": HI, "tools": TOOLS, "stream": stream}
        response = httpx.post(f"{proxy.url}/chat/completions", json=body, timeout=30)
        assert response.status_code == 200, response.text
        row = row_of(proxy, response.headers)
        assert row["fallbacks"] == 1 and row["prompt_tokens"] == 2 * PROMPT_TOKENS
        served_completion = len(JSON.split())
        assert row["baseline_cost_usd"] == pytest.approx(
            PROMPT_TOKENS * BASE[0] + served_completion * BASE[1]
        )


def test_a_refusal_reaches_every_protocol(client: OpenAI, proxy: Proxy) -> None:
    """A chat upstream's `content: null, refusal: ...`: Anthropic's text with
    `stop_reason: refusal`, the Responses API's refusal part, streamed or not."""
    chat = client.chat.completions.create(model="refuses", messages=HI)
    assert chat.choices[0].message.refusal == REFUSAL
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="k", max_retries=0)
    message = claude.messages.create(model="refuses", max_tokens=50, messages=HI)
    assert message.stop_reason == "refusal"
    assert message.content[0].text == REFUSAL  # type: ignore[union-attr]
    with claude.messages.stream(model="refuses", max_tokens=50, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() == REFUSAL and final.stop_reason == "refusal"
    responses = sync_client(proxy.url).responses
    response = responses.create(model="refuses", input="hello there")
    assert response.output[0].content[0].refusal == REFUSAL  # type: ignore[union-attr, index]
    with httpx.stream(
        "POST", f"{proxy.url}/responses",
        json={"model": "refuses", "input": "hello there", "stream": True},
    ) as streamed:  # fmt: skip
        events = [
            json.loads(line[5:]) for line in streamed.iter_lines() if line.startswith("data:")
        ]
    kinds = [e["type"] for e in events]
    assert "response.refusal.delta" in kinds and "response.refusal.done" in kinds
    final_output = events[-1]["response"]["output"]
    assert final_output[0]["content"][0]["refusal"].strip() == REFUSAL
    with responses.stream(model="refuses", input="hello there") as official:
        assert official.get_final_response().output[0].content[0].refusal.strip() == REFUSAL  # type: ignore[union-attr, index]
