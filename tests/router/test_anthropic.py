"""POST /v1/messages with the official `anthropic` client: translated to chat completions for
chat upstreams (create, stream, tool_use / tool_result round trips), forwarded as is to
upstreams that speak it, Anthropic's error shape and its `x-api-key`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import Settings

KEY = "client-key-a"
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}
TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="a-tool", tool_call=WEATHER, after_tool="It is sunny in Paris."),
        Rule(model="a-native", tool_call=WEATHER, after_tool="Sunny.", contains="weather"),
        Rule(model="a-native", prompt_tokens=10, cached_tokens=8),
        Rule(model="a-cut", cut_stream_after=2, reply="one two three four five"),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work: Path = tmp_path_factory.mktemp("anthropic")
    config = write_models(
        work / "models.yaml",
        upstream.url,
        ["a-cheap", "a-tool", "a-native", "a-cut"],
        entries={"a-native": {"api": "anthropic"}},
        **{"a-native": {"cache_read_input_token_cost": 1e-7}},
    )
    policies = (
        write_policy(work / "p.json", "a-policy", "single", {"model": "a-cheap"}),
        write_policy(
            work / "m.json", "a-mixed", "test_ordered", {"models": ["a-cheap", "a-native"]}
        ),
    )
    settings = Settings(
        policy_paths=policies,
        config_path=config,
        db_path=work / "db.duckdb",
        api_keys=frozenset({KEY}),
        timeout_s=5.0,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.base, api_key=KEY, max_retries=0, timeout=30)


def test_create_is_translated_to_chat_and_back(
    client: anthropic.Anthropic, proxy: Proxy, upstream: Upstream
) -> None:
    raw = client.messages.with_raw_response.create(
        model="a-policy",
        max_tokens=100,
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello there"}],
        stop_sequences=["\n\n"],
        metadata={"user_id": "u-7"},
    )
    out = raw.parse()
    assert out.type == "message" and out.role == "assistant"
    assert out.content[0].type == "text" and out.content[0].text == "echo: hello there"
    assert out.stop_reason == "end_turn"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (2, 3)
    sent = upstream.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert (sent["max_completion_tokens"], sent["stop"], sent["user"]) == (100, ["\n\n"], "u-7")
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["protocol"], row["model"], row["status"]) == ("anthropic", "a-cheap", 200)


def test_a_tool_use_round_trip(client: anthropic.Anthropic, upstream: Upstream) -> None:
    question: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.messages.create(model="a-tool", max_tokens=50, messages=question, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    follow_up = [
        *question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "clear sky"},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    second = client.messages.create(model="a-tool", max_tokens=50, messages=follow_up, tools=TOOLS)
    assert second.content[0].text == "It is sunny in Paris."  # type: ignore[union-attr]
    messages = upstream.requests[-1]["messages"]
    assert messages[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": json.dumps({"city": "Paris"}),
    }
    assert messages[2] == {"role": "tool", "tool_call_id": use.id, "content": "clear sky"}
    assert messages[3] == {"role": "user", "content": "and tomorrow?"}


def test_stream_with_a_tool_use_round_trip(client: anthropic.Anthropic, proxy: Proxy) -> None:
    question: list[Any] = [{"role": "user", "content": "weather?"}]
    with client.messages.stream(
        model="a-tool", max_tokens=50, messages=question, tools=TOOLS
    ) as stream:
        kinds = [event.type for event in stream]
        first = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.input == {"city": "Paris"} and first.stop_reason == "tool_use"
    follow_up = [
        *question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": [{"type": "text", "text": "clear"}]}]},
    ]  # fmt: skip
    with client.messages.stream(
        model="a-tool", max_tokens=50, messages=follow_up, tools=TOOLS
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() == "It is sunny in Paris."
    assert final.usage.output_tokens == 5  # the chat stream's usage, in message_delta


def test_an_upstream_that_speaks_messages_gets_the_body_as_is(
    client: anthropic.Anthropic, proxy: Proxy, upstream: Upstream
) -> None:
    raw = client.messages.with_raw_response.create(
        model="a-native",
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        metadata={"user_id": "u-1", "session_id": "s-1"},  # type: ignore[typeddict-unknown-key]
        extra_headers={"anthropic-beta": "some-beta-2025"},
    )
    sent = upstream.native_requests["messages"][-1]
    assert sent == {"model": "a-native", "max_tokens": 20,
                    "messages": [{"role": "user", "content": "hi"}],
                    "metadata": {"user_id": "u-1"}}  # fmt: skip
    headers = upstream.headers[-1]
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "some-beta-2025"
    out = raw.parse()
    assert out.usage.cache_read_input_tokens == 8 and out.usage.input_tokens == 2
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (10, 8, 2)
    assert row["cost_usd"] == pytest.approx(2 * 1e-6 + 8 * 1e-7 + 2 * 2e-6)
    with client.messages.stream(
        model="a-native", max_tokens=20, messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use"


def test_extended_thinking_goes_native_or_is_a_400(client: anthropic.Anthropic) -> None:
    body: dict[str, Any] = {
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": "think"}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="a-policy", **body)
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error" and "extended thinking" in error["message"]
    raw = client.messages.with_raw_response.create(model="a-mixed", **body)
    assert raw.headers["x-tradeoff-model"] == "a-native"


def test_errors_use_anthropics_shape_and_its_key_header(proxy: Proxy) -> None:
    url = f"{proxy.base}/v1/messages"
    body = {"model": "a-policy", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    cases = [
        (httpx.post(url, json=body), 401, "authentication_error"),
        (httpx.post(url, json=body, headers={"x-api-key": "wrong"}), 401, "authentication_error"),
        (httpx.post(url, json={**body, "model": "nope"}, headers={"x-api-key": KEY}), 404,
         "not_found_error"),
        (httpx.post(url, json={**body, "max_tokens": None}, headers={"x-api-key": KEY}), 400,
         "invalid_request_error"),
        (httpx.post(url, content=b"{nope", headers={"x-api-key": KEY,
                                                    "content-type": "application/json"}), 400,
         "invalid_request_error"),
        (httpx.post(url, content=b"{}", headers={"x-api-key": KEY}), 415,
         "invalid_request_error"),
    ]  # fmt: skip
    for response, status, kind in cases:
        assert response.status_code == status, response.text
        data = response.json()
        assert data["type"] == "error" and data["error"]["type"] == kind, data
        assert data["error"]["message"] and data["request_id"].startswith("req-")
    ok = httpx.post(url, json=body, headers={"authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and ok.json()["type"] == "message"


def test_a_stream_cut_midway_ends_with_an_anthropic_error_event(
    client: anthropic.Anthropic, proxy: Proxy
) -> None:
    with client.messages.with_streaming_response.create(
        model="a-cut", max_tokens=20, messages=[{"role": "user", "content": "go"}], stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        with pytest.raises(anthropic.APIStatusError) as caught:
            for _ in response.parse():
                pass
    assert "broke off" in str(caught.value)
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["status"] == 502 and row["cost_estimated"]


def test_an_anthropic_model_entry_takes_messages_natively(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`anthropic/...` models: chat goes through litellm, /v1/messages straight to the
    provider's Messages endpoint with its key as `x-api-key` (the stand-in plays Anthropic)."""
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-test-key-1234")
    entry = {"model_name": "claude", "tier": "frontier", "litellm_params": {
        "model": "anthropic/claude-sonnet-4-5", "api_base": upstream.url,
        "api_key": "os.environ/TEST_ANTHROPIC_KEY", "input_cost_per_token": 3e-6,
        "output_cost_per_token": 1.5e-5}}  # fmt: skip
    (tmp_path / "models.yaml").write_text(json.dumps({"model_list": [entry]}))
    settings = Settings(config_path=tmp_path / "models.yaml", db_path=tmp_path / "db.duckdb")
    with Proxy(settings) as proxy:
        target = proxy.state.targets["claude"]
        assert not target.direct and target.native_urls == {"anthropic": upstream.url + "/messages"}
        client = anthropic.Anthropic(base_url=proxy.base, api_key="any", max_retries=0)
        out = client.messages.create(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert out.content[0].text == "echo: hi"  # type: ignore[union-attr]
        assert upstream.native_requests["messages"][-1]["model"] == "claude-sonnet-4-5"
        assert upstream.headers[-1]["x-api-key"] == "sk-ant-test-key-1234"
        assert "sk-ant-test-key-1234" in target.secrets  # scrubbed from answers and logs


def test_count_tokens_counts_for_the_model_the_request_routes_to(
    client: anthropic.Anthropic, proxy: Proxy, upstream: Upstream
) -> None:
    """`messages.count_tokens` (Claude-based agents call it before each turn): the proxy's own
    count for the routed model; no upstream call, no log row."""
    from tradeoff.evals.estimate import count_tokens

    proxy.flush()
    calls, rows = sum(upstream.model_counts.values()), len(proxy.rows())
    short = client.messages.with_raw_response.count_tokens(
        model="a-policy", messages=[{"role": "user", "content": "hello there"}]
    )
    assert short.headers["x-tradeoff-model"] == "a-cheap"
    n_short = short.parse().input_tokens
    long_text = "hello there " + "many more words in this message " * 40
    n_long = client.messages.count_tokens(
        model="a-policy", messages=[{"role": "user", "content": long_text}]
    ).input_tokens
    assert n_short >= count_tokens("hello there") and n_long - n_short >= 40 * 6
    with_tools = client.messages.count_tokens(
        model="a-policy", messages=[{"role": "user", "content": "hello there"}], tools=TOOLS
    ).input_tokens
    assert with_tools > n_short  # tool definitions are input too
    assert sum(upstream.model_counts.values()) == calls  # nothing was sent upstream
    proxy.flush()
    assert len(proxy.rows()) == rows  # nor logged: no request was made
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.count_tokens(model="no-such", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=proxy.base, api_key="wrong", max_retries=0
        ).messages.count_tokens(model="a-policy", messages=[{"role": "user", "content": "x"}])


def _post(proxy: Proxy, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{proxy.base}/v1/messages", json=body, headers={"x-api-key": KEY})


def test_system_messages_inside_messages_are_accepted(proxy: Proxy, upstream: Upstream) -> None:
    """The anthropic SDK has `role: "system"` as a message (Claude Code sends one): leading
    ones join the system prompt, later ones stay system turns; a native model gets them as is."""
    messages = [
        {"role": "system", "content": "first rule"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "the environment"}]},
    ]
    body = {"model": "a-policy", "max_tokens": 20, "system": "be brief", "messages": messages}
    response = _post(proxy, body)
    assert response.status_code == 200, response.text
    assert upstream.requests[-1]["messages"] == [
        {"role": "system", "content": "be brief\nfirst rule"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "the environment"},
    ]
    native = _post(proxy, {**body, "model": "a-native"})
    assert native.status_code == 200, native.text
    assert upstream.native_requests["messages"][-1]["messages"] == messages


def test_claude_codes_hints_are_mapped_or_dropped_and_named(
    proxy: Proxy, upstream: Upstream
) -> None:
    """What Claude Code sends for a model it does not know: adaptive thinking and context
    management are dropped (named in the row), effort becomes `reasoning_effort`, and its
    session id in `metadata.user_id` names the session. A native model sees it all."""
    user_id = json.dumps({"device_id": "d1", "account_uuid": "", "session_id": "cc-session-1"})
    body = {
        "model": "a-mixed",
        "max_tokens": 32000,
        "messages": [{"role": "user", "content": "What is 2 + 3?"}],
        "metadata": {"user_id": user_id},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": False,
    }
    response = _post(proxy, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-tradeoff-model"] == "a-cheap"  # not skipped for a-native
    sent = upstream.requests[-1]
    assert sent["reasoning_effort"] == "high"
    assert not {"thinking", "context_management", "output_config"} & set(sent)
    request_id = response.headers["x-tradeoff-request-id"]
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["dropped"] == "thinking, context_management"
    assert row["session"] == "cc-session-1"
    native = _post(proxy, {**body, "model": "a-native"})
    assert native.status_code == 200, native.text
    assert upstream.native_requests["messages"][-1]["thinking"] == body["thinking"]
    (row,) = proxy.rows_eventually("request_id = ?", [native.headers["x-tradeoff-request-id"]])
    assert row["dropped"] is None  # nothing was left out for a model that speaks Messages


def test_offered_server_tools_are_removed_forced_ones_stay_a_400(
    proxy: Proxy, upstream: Upstream
) -> None:
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    deferred = {"name": "Later", "input_schema": {"type": "object"}, "defer_loading": True}
    body = {
        "model": "a-policy",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [*TOOLS, search, deferred],
    }
    response = _post(proxy, body)
    assert response.status_code == 200, response.text
    assert [t["function"]["name"] for t in upstream.requests[-1]["tools"]] == ["get_weather"]
    (row,) = proxy.rows_eventually("request_id = ?", [response.headers["x-tradeoff-request-id"]])
    assert row["dropped"] == "tool web_search_20250305, tool Later (deferred)"
    forced = _post(proxy, {**body, "tool_choice": {"type": "tool", "name": "web_search"}})
    assert forced.status_code == 400 and "web_search" in forced.json()["error"]["message"]
