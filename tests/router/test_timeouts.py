"""Per-attempt timeouts: a hung model falls back in time; Retry-After never outlives the deadline."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.registry import parse_entry
from tradeoff.router.fallback import attempt_timeout
from tradeoff.router.settings import Settings

HI = [{"role": "user", "content": "hello there"}]
DEADLINE_S = 4.0


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proxy, Upstream]]:
    work: Path = tmp_path_factory.mktemp("timeouts")
    rules = [
        Rule(model="t-hang", hang=True),
        Rule(model="t-hang2", hang=True),
        Rule(model="t-hang3", hang=True),
        Rule(model="t-limited", status=429, retry_after=30),
    ]
    with Upstream(rules) as upstream:
        names = ["t-hang", "t-hang2", "t-hang3", "t-backup", "t-limited"]
        config = write_models(
            work / "models.yaml",
            upstream.url,
            names,
            **{"t-hang": {"timeout": 0.5}, "t-hang3": {"timeout": 0.4}},
        )
        doc = yaml.safe_load(config.read_text())
        doc["model_list"] += [
            {
                "model_name": "t-lok",  # answers: warms litellm's lazy imports up
                "adapter": "litellm",
                "litellm_params": {
                    "model": "openai/t-backup",
                    "api_base": upstream.url,
                    "api_key": "os.environ/T_KEY",
                },
            },
            {
                "model_name": "t-lhang",
                "adapter": "litellm",  # the same hung model, through litellm.acompletion
                "litellm_params": {
                    "model": "openai/t-hang",
                    "api_base": upstream.url,
                    "api_key": "os.environ/T_KEY",
                    "timeout": 0.5,
                    "input_cost_per_token": 1e-6,
                    "output_cost_per_token": 2e-6,
                },
            },
        ]
        config.write_text(yaml.safe_dump(doc))
        policies = [
            write_policy(work / f"{name}.json", name, "test_ordered", {"models": models})
            for name, models in {
                "own-timeout": ["t-hang", "t-backup"],
                "no-timeout": ["t-hang2", "t-backup"],
                "litellm-timeout": ["t-lhang", "t-backup"],
                "limited-first": ["t-limited", "t-backup"],
            }.items()
        ]
        settings = Settings(
            policy_paths=tuple(policies),
            config_path=config,
            db_path=work / "db.duckdb",
            timeout_s=DEADLINE_S,
            retries=1,
            cooldown_s=0.0,
        )
        os.environ["T_KEY"] = "sk-t-key-123456"
        try:
            with Proxy(settings) as proxy:
                client = sync_client(proxy.url)
                for warm in ("t-backup", "t-lok"):  # first calls pay one-off imports
                    client.chat.completions.create(model=warm, messages=HI)
                yield proxy, upstream
        finally:
            del os.environ["T_KEY"]


def timed_call(proxy: Proxy, model: str) -> tuple[float, object]:
    client = sync_client(proxy.url)
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HI)
    return time.monotonic() - started, raw


def test_a_hung_primary_falls_back_within_its_own_timeout(timed: tuple[Proxy, Upstream]) -> None:
    proxy, upstream = timed
    elapsed, raw = timed_call(proxy, "own-timeout")
    assert raw.headers["x-tradeoff-model"] == "t-backup"  # type: ignore[attr-defined]
    assert elapsed < 0.5 + 1.0  # its own 0.5 s; not the share rule's 2 s, nor the 4 s deadline
    # litellm's `timeout` key is ours to honour, never a field of the upstream's request
    assert all("timeout" not in body for body in upstream.requests)


def test_without_its_own_timeout_the_first_attempt_leaves_time_for_the_fallback(
    timed: tuple[Proxy, Upstream],
) -> None:
    proxy, _ = timed
    elapsed, raw = timed_call(proxy, "no-timeout")
    assert raw.headers["x-tradeoff-model"] == "t-backup"  # type: ignore[attr-defined]
    assert elapsed < DEADLINE_S * 0.5 + 1.0  # the rule: at most half the time left


def test_the_litellm_path_honours_the_models_timeout(timed: tuple[Proxy, Upstream]) -> None:
    proxy, _ = timed
    elapsed, raw = timed_call(proxy, "litellm-timeout")
    assert raw.headers["x-tradeoff-model"] == "t-backup"  # type: ignore[attr-defined]
    assert elapsed < 0.5 + 1.0


def test_a_lone_hung_model_is_retried_within_its_timeout(timed: tuple[Proxy, Upstream]) -> None:
    proxy, upstream = timed
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        sync_client(proxy.url).chat.completions.create(model="t-hang3", messages=HI)
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 2 * 0.4 + 1.0  # two tries of 0.4 s, not the 4 s deadline
    assert upstream.model_counts["t-hang3"] == 2


def test_a_retry_after_beyond_the_deadline_fails_at_once(timed: tuple[Proxy, Upstream]) -> None:
    proxy, upstream = timed
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        sync_client(proxy.url).chat.completions.create(model="t-limited", messages=HI)
    assert time.monotonic() - started < 1.0  # not slept out inside the request
    assert caught.value.response.headers["retry-after"] == "30"
    assert upstream.model_counts["t-limited"] == 1
    elapsed, raw = timed_call(proxy, "limited-first")  # with a fallback: over at once
    assert raw.headers["x-tradeoff-model"] == "t-backup"  # type: ignore[attr-defined]
    assert elapsed < 1.0


def test_the_attempt_timeout_rule() -> None:
    # the last model (or a retry of it) may use all the time left, or its own timeout
    assert attempt_timeout(10.0, None, fallback_left=False) == 10.0
    assert attempt_timeout(10.0, 3.0, fallback_left=False) == 3.0
    assert attempt_timeout(2.0, 3.0, fallback_left=False) == 2.0
    # with a fallback after it: its own timeout, but never more than half the time left
    assert attempt_timeout(10.0, None, fallback_left=True) == 5.0
    assert attempt_timeout(10.0, 3.0, fallback_left=True) == 3.0
    assert attempt_timeout(10.0, 8.0, fallback_left=True) == 5.0


@pytest.mark.parametrize("value", [0, -1, "soon", True])
def test_a_models_timeout_must_be_a_positive_number(value: object) -> None:
    raw = {"model_name": "m", "litellm_params": {"model": "openai/m", "timeout": value}}
    with pytest.raises(ConfigError, match="timeout must be a number > 0"):
        parse_entry(raw, "models.yaml")
