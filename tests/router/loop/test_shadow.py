"""Shadow calls never delay, fail or change a client's answer; their spend stops at the budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.router.conftest import sync_client
from tests.router.loop.test_loop import wait_for
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import LoopSettings, Settings

MODELS = ["cheap", "base", "slowbase", "hangbase", "failbase", "toolbase"]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="cheap", reply="Paris"),
        Rule(model="base", reply="paris."),
        Rule(model="slowbase", reply="Paris", delay_s=1.5),
        Rule(model="hangbase", hang=True),
        Rule(model="failbase", status=500),
        Rule(model="toolbase", tool_call={"name": "f", "arguments": {}}),
    ]
    with Upstream(rules) as up:
        yield up


def serve(tmp: Path, up: Upstream, **loop: object) -> Proxy:
    config = write_models(tmp / "models.yaml", up.url, MODELS)
    policies = tuple(
        write_policy(
            tmp / f"{base}.json", f"to-{base}", "single", {"model": "cheap"}, baseline=base
        )
        for base in ("base", "slowbase", "hangbase", "failbase", "toolbase", "cheap")
    )
    options = {"shadow_rate": 1.0, "shadow_timeout_s": 2.0, "seed": 0, "refresh_s": 0.1, **loop}
    settings = Settings(
        policy_paths=policies,
        config_path=config,
        db_path=tmp / "shadow.duckdb",
        log_flush_s=0.05,
        loop=LoopSettings(**options),  # type: ignore[arg-type]
    )
    return Proxy(settings).start()


def outcomes(proxy: Proxy) -> dict[tuple[str, str], int]:
    return dict(proxy.state.loop.shadow.outcomes)


def test_a_slow_failing_or_hanging_baseline_changes_nothing_for_the_client(
    tmp_path: Path, upstream: Upstream
) -> None:
    proxy = serve(tmp_path, upstream)
    try:
        client = sync_client(proxy.url)
        client.models.list()  # a warm connection: the timings below are the requests'
        for base in ("slowbase", "hangbase", "failbase", "toolbase", "base"):
            started = time.perf_counter()
            raw = client.chat.completions.with_raw_response.create(
                model=f"to-{base}", messages=[{"role": "user", "content": "capital of France?"}]
            )
            elapsed = time.perf_counter() - started
            assert raw.status_code == 200
            assert raw.parse().choices[0].message.content == "Paris"
            assert raw.headers["x-tradeoff-model"] == "cheap"
            # Waiting for the shadow call would take its 1.5 s delay or 2 s timeout at least.
            assert elapsed < 1.0, (base, elapsed)
        wait_for(
            lambda: (
                {
                    ("to-hangbase", "timeout"),
                    ("to-failbase", "upstream_error"),
                    ("to-toolbase", "skipped"),
                    ("to-base", "graded"),
                    ("to-slowbase", "graded"),
                }
                <= set(outcomes(proxy))
            ),
            timeout_s=15,
            what="every shadow job to end",
        )
        loop = proxy.state.loop
        loop.writer.wait_written()
        loop.refresh()
        assert loop.watches["to-base"].monitor.n == 1  # "Paris" vs "paris.": normalised match
        assert loop.watches["to-base"].monitor.window.sum_r == 1.0
        assert loop.watches["to-hangbase"].monitor.n == 0
        metrics = httpx.get(f"{proxy.base}/metrics").text
        assert 'tradeoff_shadow_requests_total{policy="to-hangbase",outcome="timeout"} 1' in metrics
        assert 'tradeoff_policy_state{policy="to-base",state="collecting"} 1' in metrics
        # the client's request log rows are all 200s: shadow calls are not client requests
        proxy.flush()
        assert {r["status"] for r in proxy.rows()} == {200}
        assert len(proxy.rows()) == 5
    finally:
        proxy.stop()


def test_a_free_pair_costs_nothing_and_streams_are_shadowed(
    tmp_path: Path, upstream: Upstream
) -> None:
    proxy = serve(tmp_path, upstream)
    try:
        client = sync_client(proxy.url)
        calls_before = upstream.model_counts["base"]
        stream = client.chat.completions.create(
            model="to-base", stream=True, messages=[{"role": "user", "content": "capital?"}]
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Paris "
        client.chat.completions.create(  # routed to cheap, which is its own baseline here
            model="to-cheap", messages=[{"role": "user", "content": "capital?"}]
        )
        loop = proxy.state.loop
        wait_for(lambda: loop.watches["to-base"].pairs == 1, what="the streamed pair")
        wait_for(lambda: loop.watches["to-cheap"].pairs == 1, what="the free pair")
        assert upstream.model_counts["base"] == calls_before + 1  # one shadow call, not two
        assert outcomes(proxy)[("to-cheap", "free")] == 1
        assert loop.watches["to-cheap"].shadow_spend_usd == 0.0
        assert loop.watches["to-base"].shadow_spend_usd > 0.0
    finally:
        proxy.stop()


def test_the_budget_stops_shadow_calls(tmp_path: Path, upstream: Upstream) -> None:
    proxy = serve(tmp_path, upstream, shadow_budget_usd=1.2e-5)
    try:
        client = sync_client(proxy.url)
        calls_before = upstream.model_counts["base"]
        for _ in range(10):
            client.chat.completions.create(
                model="to-base", messages=[{"role": "user", "content": "one two three"}]
            )
        shadow = proxy.state.loop.shadow
        wait_for(lambda: shadow.pending == 0 and shadow.reserved_usd == 0, what="idle workers")
        graded = outcomes(proxy).get(("to-base", "graded"), 0)
        skipped = outcomes(proxy).get(("to-base", "over_budget"), 0)
        assert (graded, skipped) == (2, 8)
        assert shadow.spent_usd <= 1.2e-5  # each call costs 5e-6: two fit
        assert upstream.model_counts["base"] - calls_before == graded
        metrics = httpx.get(f"{proxy.base}/metrics").text
        assert "tradeoff_shadow_budget_remaining_usd" in metrics
    finally:
        proxy.stop()


def test_answers_in_every_protocol_are_shadow_graded(tmp_path: Path, upstream: Upstream) -> None:
    """The loop grades the answer a client got whatever API it spoke (kept chat-shaped)."""
    proxy = serve(tmp_path, upstream)
    try:
        ask = [{"role": "user", "content": "capital of France?"}]
        with httpx.Client(base_url=proxy.url, timeout=10) as http:
            assert http.post(
                "/responses", json={"model": "to-base", "input": "capital?"}
            ).is_success
            streamed = {"model": "to-base", "max_tokens": 9, "messages": ask, "stream": True}
            with http.stream("POST", "/messages", json=streamed) as response:
                assert b"message_stop" in response.read()
        wait_for(
            lambda: outcomes(proxy).get(("to-base", "graded"), 0) == 2, what="two graded pairs"
        )
    finally:
        proxy.stop()
