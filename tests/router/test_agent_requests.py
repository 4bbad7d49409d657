"""Real agent requests replayed through the proxy: the first request body of Claude Code 2.1.337
(`claude -p "What is 2 + 3?"`, tool search off: 21 tools) and of Codex 0.171.0 (`codex exec`,
a custom provider with `wire_api = "responses"`), as the stand-in upstream recorded them
(fixtures/; temporary paths and device ids replaced). The model behind the policy speaks only
chat completions; a plan that also holds a native model still sends them to the cheap one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return {**body, **changes}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream([Rule(model="ag-cheap", contains="What is 2 + 3?", reply="5")]) as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work = tmp_path_factory.mktemp("agent-requests")
    config = write_models(
        work / "models.yaml",
        upstream.url,
        ["ag-cheap", "ag-messages", "ag-responses"],
        entries={"ag-messages": {"api": "anthropic"}, "ag-responses": {"api": "responses"}},
    )
    models = ["ag-cheap", "ag-messages", "ag-responses"]
    policy = write_policy(work / "p.json", "agents", "test_ordered", {"models": models})
    settings = Settings(
        policy_paths=(policy,),
        config_path=config,
        db_path=work / "db.duckdb",
        timeout_s=10.0,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


def events(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]


def test_claude_codes_request_is_served_by_a_chat_model(proxy: Proxy, upstream: Upstream) -> None:
    body = fixture("claude_code_messages.json", model="agents")
    session = json.loads(body["metadata"]["user_id"])["session_id"]
    with httpx.stream("POST", f"{proxy.url}/messages", json=body, timeout=30) as response:
        assert response.status_code == 200, response.read()
        seen = events(response)
        request_id = response.headers["x-tradeoff-request-id"]
    assert response.headers["x-tradeoff-model"] == "ag-cheap"
    assert seen[0]["type"] == "message_start" and seen[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in seen if e["type"] == "content_block_delta")
    assert text.strip() == "5"
    sent = upstream.requests[-1]
    assert len(sent["tools"]) == len(body["tools"]) == 21
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "system"]
    assert sent["reasoning_effort"] == "high"
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert (row["status"], row["session"]) == (200, session)
    assert row["dropped"] == "thinking, context_management"


def test_codexs_request_is_served_by_a_chat_model(proxy: Proxy, upstream: Upstream) -> None:
    body = fixture("codex_responses.json", model="agents")
    with httpx.stream("POST", f"{proxy.url}/responses", json=body, timeout=30) as response:
        assert response.status_code == 200, response.read()
        seen = events(response)
        request_id = response.headers["x-tradeoff-request-id"]
    assert response.headers["x-tradeoff-model"] == "ag-cheap"
    assert seen[-1]["type"] == "response.completed"
    assert seen[-1]["response"]["output"][0]["content"][0]["text"].strip() == "5"
    sent = upstream.requests[-1]
    functions = [t for t in body["tools"] if t["type"] == "function"]
    assert [t["function"]["name"] for t in sent["tools"]] == [t["name"] for t in functions]
    assert "client_metadata" not in sent
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert (row["status"], row["session"]) == (200, body["prompt_cache_key"])
    assert row["dropped"] == (
        "tool namespace multi_agent_v1, tool web_search, reasoning.summary, client_metadata"
    )
