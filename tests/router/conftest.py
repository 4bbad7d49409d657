"""Shared fixtures: one scripted upstream and one proxy in front of it per test module."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.router.support import (
    Proxy,
    register_test_family,
    unregister_test_family,
    write_models,
    write_policy,
)
from tests.support.upstream import Rule, Upstream
from tradeoff.router.settings import Settings

# Without TCP_NODELAY a sync httpx client waits out the server's delayed ACK (~40 ms a call).
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

# Every test uses its own model names, so scripted failures and cooldowns never cross tests.
RULES = [
    Rule(model="fails", status=500),
    Rule(model="limited", status=429, retry_after=0.2),
    Rule(model="flaky", status=503, fail_times=1),
    Rule(model="hangs", hang=True),
    Rule(model="cut", cut_stream_after=2, reply="one two three four five six"),
    Rule(model="slow", delay_s=0.3, reply="slowly"),
    Rule(model="slowstream", chunk_delay_s=0.2, reply="a b c d e f g h i j"),
    Rule(model="tooly", tool_call={"name": "get_weather", "arguments": {"city": "Paris"}}),
    Rule(model="nousage", usage=False),
    Rule(model="rejects", status=400),
    Rule(model="cooling", status=500),
    Rule(model="stream500", status=500),
]
MODELS = [
    "cheap", "strong", "baseline", "fails", "limited", "flaky", "hangs", "cut", "slow",
    "slowstream", "tooly", "nousage", "rejects", "cooling", "backup", "stream500", "spare",
]  # fmt: skip


def sync_client(base_url: str, api_key: str = "test-key") -> OpenAI:
    http = httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY), timeout=30)
    return OpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http)


def async_client(base_url: str, api_key: str = "test-key") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)


@pytest.fixture(scope="module", autouse=True)
def ordered_family() -> Iterator[None]:
    """The test-only `test_ordered` policy family, registered for each router test module."""
    register_test_family()
    yield
    unregister_test_family()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    # Fresh copies: a rule counts its calls (fail_times), which must not carry across modules.
    with Upstream([dataclasses.replace(rule) for rule in RULES]) as up:
        yield up


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def proxy(upstream: Upstream, workdir: Path) -> Iterator[Proxy]:
    """A proxy serving three policies over every scripted model (no auth, 2 s timeout)."""
    config = write_models(workdir / "models.yaml", upstream.url, MODELS)
    single = write_policy(
        workdir / "single.json", "cheap-router", "single", {"model": "cheap"}, baseline="strong"
    )
    table = write_policy(
        workdir / "table.json",
        "by-task",
        "task_table",
        {"table": {"math": "strong", "chat": "cheap"}, "default": "cheap"},
        baseline="strong",
    )
    chain = write_policy(
        workdir / "chain.json", "chain", "test_ordered", {"models": ["fails", "backup", "spare"]}
    )
    settings = Settings(
        policy_paths=(single, table, chain),
        config_path=config,
        db_path=workdir / "proxy.duckdb",
        timeout_s=2.0,
        cooldown_s=30.0,
        retries=1,
        log_flush_s=0.05,
    )
    with Proxy(settings) as running:
        yield running


@pytest.fixture(scope="module")
def client(proxy: Proxy) -> OpenAI:
    return sync_client(proxy.url)
