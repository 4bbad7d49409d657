"""Every plan ends in the policy's baseline, and a hung model stops getting new requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.router.conftest import async_client, sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import Settings

HI = [{"role": "user", "content": "hello there"}]
RULES = [Rule(model="down", status=500), Rule(model="wobbly", reply="quick")]
MODELS = ["down", "wobbly", "strong", "cheap"]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream([Rule(model=r.model, status=r.status, reply=r.reply) for r in RULES]) as up:
        yield up


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    workdir: Path = tmp_path_factory.mktemp("plans")
    config = write_models(workdir / "models.yaml", upstream.url, MODELS)
    policies = (
        write_policy(
            workdir / "a.json", "one-down", "single", {"model": "down"}, baseline="strong"
        ),
        write_policy(
            workdir / "b.json",
            "table-down",
            "task_table",
            {"table": {"math": "down"}, "default": "down"},
            baseline="strong",
        ),
        write_policy(
            workdir / "c.json", "one-wobbly", "single", {"model": "wobbly"}, baseline="strong"
        ),
        write_policy(workdir / "d.json", "no-baseline", "single", {"model": "down"}),
    )
    settings = Settings(
        policy_paths=policies,
        config_path=config,
        db_path=workdir / "proxy.duckdb",
        timeout_s=8.0,
        cooldown_s=0.001,  # so the cooldown of a failed attempt never hides a stall
        retries=0,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)


@pytest.mark.parametrize("policy", ["one-down", "table-down"])
def test_a_one_model_plan_falls_back_to_the_baseline(
    policy: str, client: OpenAI, proxy: Proxy
) -> None:
    raw = client.chat.completions.with_raw_response.create(model=policy, messages=HI)
    assert raw.headers["x-tradeoff-model"] == "strong"
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["status"], row["model"], row["fallbacks"]) == (200, "strong", 1)


def test_a_model_the_client_named_gets_no_fallback(client: OpenAI) -> None:
    with pytest.raises(Exception) as caught:
        client.chat.completions.create(model="down", messages=HI)
    assert getattr(caught.value, "status_code", None) == 502


def test_a_policy_without_a_baseline_keeps_its_plan(client: OpenAI) -> None:
    with pytest.raises(Exception) as caught:
        client.chat.completions.create(model="no-baseline", messages=HI)
    assert getattr(caught.value, "status_code", None) == 502


async def test_requests_behind_a_hung_model_go_to_the_fallback_at_once(
    proxy: Proxy, upstream: Upstream
) -> None:
    client = async_client(proxy.url)
    # The model's usual latency, learnt from its own answers.
    for _ in range(25):
        raw = await client.chat.completions.with_raw_response.create(
            model="one-wobbly", messages=HI
        )
        assert raw.headers["x-tradeoff-model"] == "wobbly"
    (rule,) = [r for r in upstream.rules if r.model == "wobbly"]
    rule.hang = True
    try:
        first = asyncio.ensure_future(
            client.chat.completions.with_raw_response.create(model="one-wobbly", messages=HI)
        )
        await asyncio.sleep(0.5)  # the first request's attempt is now far past wobbly's p99
        assert not first.done()
        started = time.monotonic()
        second = await client.chat.completions.with_raw_response.create(
            model="one-wobbly", messages=HI
        )
        waited = time.monotonic() - started
        assert second.headers["x-tradeoff-model"] == "strong"
        request_id = second.headers["x-tradeoff-request-id"]
        (row,) = proxy.rows_eventually("request_id = ?", [request_id])
        # Straight to the fallback: wobbly was not tried (old behaviour: it waited out wobbly's
        # attempt timeout, 4 s, before falling back).
        assert (row["attempts"], row["model"]) == (1, "strong"), waited
        answered = await first
        assert answered.headers["x-tradeoff-model"] == "strong"  # after wobbly's timeout
    finally:
        rule.hang = False
        await client.close()
