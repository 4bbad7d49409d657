"""A refine variant served by the proxy (router/refine.py): the loop runs inside the request,
every round is paid for on the log row, and the plain model's answer is untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.evals.runner_fixtures import (
    BIG_PRICE,
    BROKEN,
    FIXED,
    LOOKUP,
    PRICE,
    clumsy_rules,
    escalation_models,
    escalation_rules,
    model_entry,
    sloppy_models,
    sloppy_rules,
    write_models,
)
from tests.router.support import Proxy
from tests.support.upstream import Upstream
from tradeoff.router.settings import Settings


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream(rules=[*clumsy_rules(), *sloppy_rules(), *escalation_rules()]) as up:
        yield up


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-refine")


def test_the_proxy_serves_the_refine_loop_and_logs_every_round(
    upstream: Upstream, tmp_path: Path
) -> None:
    config = sloppy_models(tmp_path / "models.yaml", upstream.url)
    settings = Settings(config_path=config, db_path=tmp_path / "proxy.duckdb", retries=0)
    ask = [{"role": "user", "content": "give me json"}]
    with Proxy(settings) as proxy:
        client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        before = len(upstream.requests)
        plain = client.chat.completions.with_raw_response.create(
            model="sloppy", messages=ask, response_format={"type": "json_object"}
        )
        assert plain.parse().choices[0].message.content.strip() == BROKEN  # untouched
        assert "x-tradeoff-rounds" not in plain.headers
        assert len(upstream.requests) - before == 1
        fixed = client.chat.completions.with_raw_response.create(
            model="sloppy:fix", messages=ask, response_format={"type": "json_object"}
        )
        assert json.loads(fixed.parse().choices[0].message.content) == json.loads(FIXED)
        assert fixed.headers["x-tradeoff-rounds"] == "2"
        assert len(upstream.requests) - before == 3
        repair = upstream.requests[-1]
        assert repair["messages"][-1]["content"].startswith("Your answer failed: not JSON")
        # Without a response_format nothing is checkable: the variant answers once.
        once = client.chat.completions.with_raw_response.create(model="sloppy:fix", messages=ask)
        assert once.parse().choices[0].message.content.strip() == BROKEN
        assert len(upstream.requests) - before == 4
        rows = proxy.rows_eventually("true", count=3)
    by_id = {r["request_id"]: r for r in rows}
    first = by_id[plain.headers["x-tradeoff-request-id"]]
    both = by_id[fixed.headers["x-tradeoff-request-id"]]
    # The log row pays for both rounds: the second resends the conversation, so it costs more.
    assert both["completion_tokens"] > first["completion_tokens"]
    assert both["prompt_tokens"] > 2 * first["prompt_tokens"]
    assert both["cost_usd"] == pytest.approx(
        PRICE * (both["prompt_tokens"] + both["completion_tokens"])
    )
    assert float(fixed.headers["x-tradeoff-cost-usd"]) == pytest.approx(both["cost_usd"])
    assert (first["rounds"], both["rounds"]) == (None, 2)
    assert by_id[once.headers["x-tradeoff-request-id"]]["rounds"] == 1


def test_a_streamed_refine_request_gets_the_repaired_answer(
    upstream: Upstream, tmp_path: Path
) -> None:
    config = sloppy_models(tmp_path / "models.yaml", upstream.url)
    settings = Settings(config_path=config, db_path=tmp_path / "proxy.duckdb", retries=0)
    ask = [{"role": "user", "content": "stream me json"}]
    with Proxy(settings) as proxy:
        client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        before = len(upstream.requests)
        with client.chat.completions.with_streaming_response.create(
            model="sloppy:fix",
            messages=ask,
            response_format={"type": "json_object"},
            stream=True,
            stream_options={"include_usage": True},
        ) as raw:
            assert raw.headers["x-tradeoff-rounds"] == "2"
            chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert json.loads(text) == json.loads(FIXED)
        assert len(upstream.requests) - before == 2
        row = proxy.rows_eventually("model = 'sloppy:fix'")[0]
    assert row["rounds"] == 2
    usage = next(c.usage for c in chunks if c.usage)
    assert row["prompt_tokens"] > usage.prompt_tokens  # the log pays for both rounds


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_that_does_not_fit_its_schema_is_sent_back(
    upstream: Upstream, tmp_path: Path, stream: bool
) -> None:
    entry = model_entry("clumsy", upstream.url)
    entry["variants"] = [{"name": "fix", "refine": {"rounds": 1}}]
    config = write_models(tmp_path / "models.yaml", [entry])
    settings = Settings(config_path=config, db_path=tmp_path / "proxy.duckdb", retries=0)
    ask = [{"role": "user", "content": "weather in Paris?"}]
    with Proxy(settings) as proxy:
        client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        before = len(upstream.requests)
        plain = client.chat.completions.create(model="clumsy", messages=ask, tools=[LOOKUP])
        calls = plain.choices[0].message.tool_calls or []
        assert json.loads(calls[0].function.arguments) == {"town": 3}  # untouched
        if stream:
            chunks = client.chat.completions.create(
                model="clumsy:fix", messages=ask, tools=[LOOKUP], stream=True
            )
            arguments = "".join(
                (c.choices[0].delta.tool_calls or [None])[0].function.arguments or ""  # type: ignore[union-attr]
                for c in chunks
                if c.choices and c.choices[0].delta.tool_calls
            )
        else:
            fixed = client.chat.completions.create(model="clumsy:fix", messages=ask, tools=[LOOKUP])
            arguments = (fixed.choices[0].message.tool_calls or [])[0].function.arguments
        assert json.loads(arguments) == {"city": "Paris"}
        assert len(upstream.requests) - before == 3
        repair = upstream.requests[-1]["messages"]
        assert repair[-2] == {"role": "assistant", "content": 'lookup({"town": 3})'}
        assert repair[-1]["content"].startswith(
            "Your answer failed: the arguments of 'lookup' do not fit its schema"
        )


@pytest.mark.parametrize("stream", [False, True])
def test_a_refine_variant_escalates_after_its_last_failed_round(
    upstream: Upstream, tmp_path: Path, stream: bool
) -> None:
    config = escalation_models(tmp_path / "models.yaml", upstream.url, rounds=1)
    settings = Settings(config_path=config, db_path=tmp_path / "proxy.duckdb", retries=0)
    ask = [{"role": "user", "content": "json please"}]
    with Proxy(settings) as proxy:
        client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        before = len(upstream.requests)
        if stream:
            with client.chat.completions.with_streaming_response.create(
                model="stubborn:fix",
                messages=ask,
                response_format={"type": "json_object"},
                stream=True,
                stream_options={"include_usage": True},
            ) as raw:
                headers = raw.headers
                chunks = list(raw.parse())
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            served = next(c.usage for c in chunks if c.usage)
        else:
            done = client.chat.completions.with_raw_response.create(
                model="stubborn:fix", messages=ask, response_format={"type": "json_object"}
            )
            headers, answer = done.headers, done.parse()
            text, served = answer.choices[0].message.content or "", answer.usage
        assert json.loads(text) == json.loads(FIXED)
        asked = [r["model"] for r in upstream.requests[before:]]
        assert asked == ["stubborn", "stubborn", "big"]
        # The escalation model gets the client's request, not the failed conversation.
        assert upstream.requests[-1]["messages"] == ask
        assert headers["x-tradeoff-escalated"] == "big"
        assert headers["x-tradeoff-rounds"] == "3"
        assert headers["x-tradeoff-model"] == "stubborn:fix"
        row = proxy.rows_eventually("model = 'stubborn:fix'")[0]
    assert (row["rounds"], row["escalated"]) == (3, "big")
    assert served is not None
    big_tokens = served.prompt_tokens + served.completion_tokens
    cheap_tokens = row["prompt_tokens"] + row["completion_tokens"] - big_tokens
    assert cheap_tokens > 0
    # Both of stubborn's rounds at its price, the served answer at big's.
    assert row["cost_usd"] == pytest.approx(PRICE * cheap_tokens + BIG_PRICE * big_tokens)
