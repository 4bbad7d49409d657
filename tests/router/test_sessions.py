"""Sessions: a conversation keeps its model across turns, escalates only to a dearer model on a
fallback, never back down, is routed afresh by a new policy version, and expires."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from openai import OpenAI

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.sessions import MemorySessions, Pin, continues, session_id
from tradeoff.router.settings import Settings

PRICES = {"s-cheap": (1e-6, 2e-6), "s-mid": (2e-6, 4e-6), "s-dear": (5e-6, 1e-5)}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="s-cheap", contains="FAIL", status=500),
        Rule(model="s-dear", contains="BOOM", status=500),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sessions")


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, work: Path) -> Iterator[Proxy]:
    prices = {
        name: {"input_cost_per_token": i, "output_cost_per_token": o}
        for name, (i, o) in PRICES.items()
    }
    config = write_models(work / "models.yaml", upstream.url, list(PRICES), **prices)
    policies = (
        write_policy(work / "t.json", "s-tasks", "task_table",
                     {"table": {"a": "s-cheap", "b": "s-dear"}, "default": "s-mid"}),
        write_policy(work / "o.json", "s-ordered", "test_ordered",
                     {"models": ["s-cheap", "s-dear"]}),
    )  # fmt: skip
    settings = Settings(
        policy_paths=policies,
        config_path=config,
        db_path=work / "db.duckdb",
        cooldown_s=0.0,  # a failed model is not demoted: what moves a session is the session
        retries=0,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)


def turn(
    client: OpenAI, model: str, messages: list[dict[str, Any]], text: str, **extra: Any
) -> tuple[str, str]:
    """One turn: ask `text` after `messages`, append both; (answering model, request id)."""
    messages.append({"role": "user", "content": text})
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        **extra,
    )
    messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
    return raw.headers["x-tradeoff-model"], raw.headers["x-tradeoff-request-id"]


def test_a_five_turn_conversation_stays_on_one_model(client: OpenAI, proxy: Proxy) -> None:
    # Alone, turns of task b would go to s-dear and the rest to s-cheap.
    alone = client.chat.completions.with_raw_response.create(
        model="s-tasks", messages=[{"role": "user", "content": "fresh b question"}],
        extra_headers={"x-tradeoff-task": "b"},
    )  # fmt: skip
    assert alone.headers["x-tradeoff-model"] == "s-dear"
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are terse."}]
    seen, ids = [], []
    for i, task in enumerate(["a", "b", "a", "b", "b"]):
        model, request_id = turn(
            client, "s-tasks", messages, f"turn {i}", extra_headers={"x-tradeoff-task": task}
        )
        seen.append(model)
        ids.append(request_id)
    assert seen == ["s-cheap"] * 5
    rows = proxy.rows_eventually(f"request_id IN ({', '.join('?' * 5)})", ids, count=5)
    assert {row["session"] for row in rows} == {session_id({"messages": messages[:2]}, None)}
    assert all(row["session"].startswith("prompt:") for row in rows)
    # The log says why a later turn of task b stayed on the cheap model: its session.
    later_b = next(r for r in rows if r["request_id"] == ids[3])
    assert later_b["route_reason"] == "session continues on s-cheap (plan: task b -> s-dear)"


def test_a_session_escalates_on_a_fallback_and_never_comes_back_down(client: OpenAI) -> None:
    messages: list[dict[str, Any]] = []
    assert turn(client, "s-ordered", messages, "hello")[0] == "s-cheap"
    assert turn(client, "s-ordered", messages, "please FAIL now")[0] == "s-dear"  # fallback
    assert turn(client, "s-ordered", messages, "all good again")[0] == "s-dear"  # escalated
    # The dear model failing once falls back to the cheap one for that turn only.
    assert turn(client, "s-ordered", messages, "BOOM")[0] == "s-cheap"
    assert turn(client, "s-ordered", messages, "and now?")[0] == "s-dear"


def test_sessions_are_named_by_header_user_or_metadata(client: OpenAI, proxy: Proxy) -> None:
    def chat(first: str, **extra: Any) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
        turn(client, "s-tasks", messages, "more", **extra)
        return turn(client, "s-tasks", messages, "again", **extra)[1]

    by_header = chat("x", extra_headers={"x-tradeoff-session": "conv-42"})
    odd = client.chat.completions.with_raw_response.create(
        model="s-tasks", messages=[{"role": "user", "content": "q"}],
        metadata={"session_id": "line\nbreak ☃"},
    )  # fmt: skip
    assert odd.status_code == 200 and "x-tradeoff-session" not in odd.headers
    by_user = chat("y", user="alice@example.com")
    by_metadata = chat("z", metadata={"session_id": "m-7"})
    rows = {
        rid: proxy.rows_eventually("request_id = ?", [rid])[0]["session"]
        for rid in (by_header, by_user, by_metadata)
    }
    assert rows[by_header] == "conv-42" and rows[by_metadata] == "m-7"
    assert (
        client.chat.completions.with_raw_response.create(
            model="s-tasks", messages=[{"role": "user", "content": "q"}], user="bob"
        )
        .headers["x-tradeoff-session"]
        .startswith("user:")
    )
    assert rows[by_user].startswith("user:") and "alice" not in rows[by_user]


def test_a_new_policy_version_routes_sessions_afresh(client: OpenAI, proxy: Proxy) -> None:
    messages: list[dict[str, Any]] = []
    header = {"x-tradeoff-task": "a"}
    assert turn(client, "s-tasks", messages, "v1", extra_headers=header)[0] == "s-cheap"
    assert turn(client, "s-tasks", messages, "v1 again", extra_headers=header)[0] == "s-cheap"
    path = proxy.settings.policy_paths[0]
    write_policy(path, "s-tasks", "task_table", {"table": {"a": "s-mid"}, "default": "s-mid"})
    proxy.state.policies.reload()
    try:
        assert turn(client, "s-tasks", messages, "v2", extra_headers=header)[0] == "s-mid"
    finally:
        write_policy(path, "s-tasks", "task_table",
                     {"table": {"a": "s-cheap", "b": "s-dear"}, "default": "s-mid"})  # fmt: skip
        proxy.state.policies.reload()


def test_anthropic_turns_keep_their_model_too(proxy: Proxy) -> None:
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="x", max_retries=0)
    messages: list[Any] = []
    models = []
    for i, task in enumerate(["a", "b", "b"]):
        messages.append({"role": "user", "content": f"claude turn {i}"})
        raw = claude.messages.with_raw_response.create(
            model="s-tasks", max_tokens=20, messages=messages,
            extra_headers={"x-tradeoff-task": task},
        )  # fmt: skip
        models.append(raw.headers["x-tradeoff-model"])
        messages.append({"role": "assistant", "content": raw.parse().content[0].text})  # type: ignore[union-attr]
    assert models == ["s-cheap"] * 3


def test_the_session_table() -> None:
    table = MemorySessions(ttl_s=0.2, max_entries=2)
    cheap, dear = Pin("cheap", 1.0, "v1"), Pin("dear", 5.0, "v1")
    assert table.settle("k", cheap) == cheap
    assert table.settle("k", dear) == dear  # escalates
    assert table.settle("k", cheap) == dear  # never back down
    assert table.settle("k", Pin("cheap", 1.0, "v2")).version == "v2"  # a new version resets
    assert table.settle("k", cheap, first_turn=True) == cheap  # a new conversation resets
    table.settle("a", cheap)
    table.settle("b", cheap)
    assert table.get("k") is None and len(table) == 2  # least recently used dropped
    time.sleep(0.25)
    assert table.get("a") is None  # expired


def test_what_names_a_session_and_what_continues_one() -> None:
    first = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}
    later = {"messages": [*first["messages"], {"role": "assistant", "content": "a"},
                          {"role": "user", "content": "q2"}]}  # fmt: skip
    assert session_id(first, None) == session_id(later, None)
    assert session_id(first, None) != session_id(
        {"messages": [{"role": "user", "content": "q"}]}, None
    )
    assert session_id(later, "mine") == "mine"
    assert not continues(first, None) and continues(later, None)
    assert continues(first, {"previous_response_id": "resp_1"})
    assert session_id({"messages": []}, None) is None


def test_pins_heard_from_other_replicas_follow_the_same_rules() -> None:
    """SharedSessions applies another replica's pin like its own turn (no store needed here:
    the messages are handed over directly)."""
    import asyncio

    from tradeoff.router.replicas.sessions import SharedSessions

    table = SharedSessions(60.0, "postgresql://unused")
    cheap, dear = Pin("s-cheap", 1.0, "v1"), Pin("s-dear", 5.0, "v1")

    def hear(pin: Pin, first: bool = False) -> None:
        table._apply({"k": "k", "m": pin.model, "r": pin.rank, "v": pin.version, "f": first})

    hear(dear, first=True)
    assert table.get("k") == dear
    hear(cheap)  # a later turn elsewhere on a cheaper model: the pin stays
    assert table.get("k") == dear
    hear(cheap, first=True)  # a new conversation under the same name starts over
    assert table.get("k") == cheap
    hear(Pin("s-mid", 0.5, "v2"))  # a new policy version replaces it, cheaper or not
    assert table.get("k") == Pin("s-mid", 0.5, "v2")
    # Not listening (no store): a later turn without a pin does not wait for one.
    started = time.monotonic()
    asyncio.run(table.arrival("other", timeout_s=5.0))
    assert time.monotonic() - started < 1.0
