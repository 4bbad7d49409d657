"""POST /v1/responses with the official `openai` client: translated to chat completions for chat
upstreams (create, stream, tool round trips, JSON schema), forwarded as is to upstreams that
speak it, and a clear 400 for what cannot be translated."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import Settings

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}
TOOLS: Any = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="r-tool", tool_call=WEATHER, after_tool="It is sunny in Paris."),
        Rule(model="r-native", tool_call=WEATHER, after_tool="Sunny (native).", contains="weather"),
        Rule(model="r-native", cached_tokens=2, reasoning_tokens=5),
        Rule(model="r-nousage", usage=False),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work: Path = tmp_path_factory.mktemp("responses")
    config = write_models(
        work / "models.yaml",
        upstream.url,
        ["r-cheap", "r-tool", "r-native", "r-nousage"],
        entries={"r-native": {"api": "responses"}},
        **{"r-native": {"cache_read_input_token_cost": 1e-7}},
    )
    policies = (
        write_policy(work / "p.json", "r-policy", "single", {"model": "r-cheap"}),
        write_policy(work / "t.json", "r-tools", "single", {"model": "r-tool"}),
        write_policy(
            work / "m.json", "r-mixed", "test_ordered", {"models": ["r-cheap", "r-native"]}
        ),
    )
    settings = Settings(
        policy_paths=policies,
        config_path=config,
        db_path=work / "db.duckdb",
        timeout_s=5.0,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)


def test_create_is_translated_to_chat_and_back(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    raw = client.responses.with_raw_response.create(
        model="r-policy", input="hello there", instructions="be brief", max_output_tokens=50
    )
    out = raw.parse()
    assert out.object == "response" and out.status == "completed"
    assert out.output_text == "echo: hello there"
    assert out.instructions == "be brief"
    assert out.usage is not None and (out.usage.input_tokens, out.usage.output_tokens) == (2, 3)
    sent = upstream.requests[-1]  # a chat-completions body reached the chat upstream
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    assert sent["max_completion_tokens"] == 50 and sent["model"] == "r-cheap"
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["protocol"], row["policy"], row["model"], row["status"]) == (
        "responses",
        "r-policy",
        "r-cheap",
        200,
    )
    assert row["cost_usd"] == pytest.approx(2e-6 + 3 * 2e-6)


def test_a_tool_round_trip(client: OpenAI, upstream: Upstream) -> None:
    question = [{"role": "user", "content": "what is the weather in Paris?"}]
    first = client.responses.create(model="r-tools", input=question, tools=TOOLS)  # type: ignore[arg-type]
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert upstream.requests[-1]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": TOOLS[0]["parameters"],
            },
        }
    ]
    follow_up = [
        *question,
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "clear"}'},
    ]
    second = client.responses.create(model="r-tools", input=follow_up, tools=TOOLS)  # type: ignore[arg-type]
    assert second.output_text == "It is sunny in Paris."
    messages = upstream.requests[-1]["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": call.call_id,
        "content": '{"sky": "clear"}',
    }


def test_stream_with_a_tool_round_trip(client: OpenAI) -> None:
    question = [{"role": "user", "content": "weather?"}]
    with client.responses.stream(model="r-tools", input=question, tools=TOOLS) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        first = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert json.loads(call.arguments) == {"city": "Paris"}
    follow_up = [
        *question,
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "clear"},
    ]
    with client.responses.stream(model="r-tools", input=follow_up, tools=TOOLS) as stream:  # type: ignore[arg-type]
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas).strip() == final.output_text.strip() == "It is sunny in Paris."


def test_a_raw_stream_has_numbered_events_and_is_logged(client: OpenAI, proxy: Proxy) -> None:
    with client.responses.with_streaming_response.create(
        model="r-policy", input="count to three", stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        events = list(response.parse())
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text.strip() == "echo: count to three"
    assert done.response.usage is not None and done.response.usage.output_tokens == 4
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["stream"] and row["status"] == 200 and row["protocol"] == "responses"
    assert row["completion_tokens"] == 4 and row["ttft_ms"] is not None


def test_text_format_json_schema_becomes_response_format(
    client: OpenAI, upstream: Upstream
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    client.responses.create(
        model="r-policy",
        input="give json",
        text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}},
    )
    assert upstream.requests[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }


def test_an_upstream_that_speaks_responses_gets_the_body_as_is(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    chats = len(upstream.requests)
    raw = client.responses.with_raw_response.create(
        model="r-native", input="hi", reasoning={"effort": "low"}, metadata={"task": "t"}
    )
    sent = upstream.native_requests["responses"][-1]
    assert sent == {"model": "r-native", "input": "hi", "reasoning": {"effort": "low"},
                    "metadata": {}}  # fmt: skip
    assert len(upstream.requests) == chats  # no chat call
    out = raw.parse()
    assert out.output_text == "echo: hi"
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["model"], row["task"], row["prompt_tokens"]) == ("r-native", "t", 1)
    assert (row["cached_tokens"], row["reasoning_tokens"], row["completion_tokens"]) == (1, 5, 7)
    # 0 fresh input, 1 cached at $0.1/1M, 7 output (reasoning included) at $2/1M
    assert row["cost_usd"] == pytest.approx(1e-7 + 7 * 2e-6)
    with client.responses.stream(model="r-native", input="what weather?", tools=TOOLS) as stream:  # type: ignore[arg-type]
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"
    assert upstream.native_requests["responses"][-1]["stream"] is True


def test_what_cannot_be_translated_is_a_400_or_goes_native(
    client: OpenAI, upstream: Upstream
) -> None:
    chats = len(upstream.requests)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}, "web_search"),
        ({"store": True}, "store: true"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ]
    for extra, named in cases:
        body: dict[str, Any] = {"input": "hi", **extra}
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="r-policy", **body)
        assert named in caught.value.message and "Responses API" in caught.value.message
        assert caught.value.body["code"] == "model_cannot_serve"  # type: ignore[index]
        # A plan with a model that speaks Responses skips the chat model for it.
        raw = client.responses.with_raw_response.create(model="r-mixed", **body)
        assert raw.headers["x-tradeoff-model"] == "r-native"
    assert len(upstream.requests) == chats  # nothing untranslatable reached a chat upstream


def test_malformed_bodies_name_the_responses_field(proxy: Proxy) -> None:
    for body, param in (
        ({"model": "r-policy"}, "input"),
        ({"model": "r-policy", "input": 3}, "input"),
        ({"model": "r-policy", "input": []}, "input"),
        ({"model": "r-policy", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "r-policy", "input": [{"role": "boss", "content": "x"}]}, "input[0]"),
        ({"input": "x"}, "model"),
    ):
        response = httpx.post(f"{proxy.url}/responses", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param


def test_no_usage_is_estimated_on_the_translated_route(client: OpenAI, proxy: Proxy) -> None:
    raw = client.responses.with_raw_response.create(model="r-nousage", input="count these words")
    assert raw.headers["x-tradeoff-cost-estimated"] == "true"
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert row["cost_estimated"] and row["cost_usd"] > 0


def test_no_route_imports_litellm_for_openai_compatible_upstreams(
    upstream: Upstream, tmp_path: Path
) -> None:
    """litellm takes seconds to import: serving every protocol to OpenAI-compatible upstreams
    (translations included) must never load it, at startup or per request."""
    code = f"""
import sys, httpx
from pathlib import Path
from tradeoff.router.settings import Settings
from tests.router.support import Proxy, write_models
work = Path({str(tmp_path)!r})
config = write_models(work / "models.yaml", {upstream.url!r}, ["m", "n"],
                      entries={{"n": {{"api": "responses"}}}})
with Proxy(Settings(config_path=config, db_path=work / "db.duckdb")) as proxy:
    for path, body in [
        ("/chat/completions", {{"model": "m", "messages": [{{"role": "user", "content": "x"}}]}}),
        ("/responses", {{"model": "m", "input": "x"}}),
        ("/responses", {{"model": "n", "input": "x", "stream": True}}),
        ("/messages", {{"model": "m", "max_tokens": 5, "messages": [{{"role": "user", "content": "x"}}]}}),
        ("/embeddings", {{"model": "m", "input": "x"}}),
        ("/completions", {{"model": "m", "prompt": "x"}}),
    ]:
        assert httpx.post(proxy.url + path, json=body).status_code == 200, path
print("litellm" in sys.modules)
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"


CODEX_TOOLS: Any = [
    *TOOLS,
    {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": []},
    {"type": "web_search", "external_web_access": False},
]


def _codex_body(**more: Any) -> dict[str, Any]:
    """What Codex sends (the fields that matter here): hints, and built-in tools it offers."""
    return {
        "model": "r-mixed",
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "What is 2 + 3?"}]}],
        "tools": CODEX_TOOLS, "tool_choice": "auto", "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"}, "store": False,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "thread-1",
        "client_metadata": {"thread_id": "thread-1", "turn_id": "t1"}, **more,
    }  # fmt: skip


def test_codexs_hints_are_dropped_and_offered_tools_removed(
    proxy: Proxy, upstream: Upstream
) -> None:
    """Codex's body goes to the plan's cheap chat model (not to the native one it used to be
    forced to): `client_metadata` and `reasoning.summary` dropped, `namespace` and
    `web_search` removed, each named in the row; `prompt_cache_key` names the session."""
    response = httpx.post(f"{proxy.url}/responses", json=_codex_body())
    assert response.status_code == 200, response.text
    assert response.headers["x-tradeoff-model"] == "r-cheap"
    sent = upstream.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert "client_metadata" not in sent and sent["prompt_cache_key"] == "thread-1"
    (row,) = proxy.rows_eventually("request_id = ?", [response.headers["x-tradeoff-request-id"]])
    assert row["dropped"] == (
        "tool namespace multi_agent_v1, tool web_search, reasoning.summary, client_metadata"
    )
    assert row["session"] == "thread-1"
    other = httpx.post(f"{proxy.url}/responses", json=_codex_body(prompt_cache_key="thread-2"))
    (row,) = proxy.rows_eventually("request_id = ?", [other.headers["x-tradeoff-request-id"]])
    assert row["session"] == "thread-2"  # another run of Codex: another session


def test_strict_translation_refuses_offered_built_in_tools(
    upstream: Upstream, proxy: Proxy, tmp_path: Path
) -> None:
    settings = dataclasses.replace(
        proxy.settings, db_path=tmp_path / "strict.duckdb", strict_translation=True
    )
    with Proxy(settings) as strict:
        body = _codex_body(model="r-policy")
        refused = httpx.post(f"{strict.url}/responses", json=body)
        assert refused.status_code == 400, refused.text
        assert "namespace multi_agent_v1" in refused.json()["error"]["message"]
        native = httpx.post(f"{strict.url}/responses", json=_codex_body())
        assert native.headers["x-tradeoff-model"] == "r-native"  # a plan's native model serves
        plain = httpx.post(f"{strict.url}/responses", json={**body, "tools": TOOLS})
        assert plain.status_code == 200  # hints alone are still dropped
