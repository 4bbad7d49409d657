"""One measured call against the upstream stand-in: text, tokens, cost, timings, errors, keys.

Each call test runs on both paths of the shared adapter: the direct OpenAI-compatible one and
litellm's (forced with `adapter: litellm`, as for providers with other protocols).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evals.runner_fixtures import PRICE, model_entry
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.call import acomplete
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.llm import call_kwargs, scrub, token_prices
from tradeoff.evals.registry import ModelEntry, parse_entry
from tradeoff.evals.targets import build_target

KEY = "sk-adapter-secret-4242"
ASK = [{"role": "user", "content": "what is two plus two"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="four", reply="the answer is 4", chunk_delay_s=0.02, delay_s=0.05),
        Rule(model="nousage", reply="one two three", usage=False),
        Rule(model="down", status=500),
        Rule(model="limited", status=429, retry_after=1.5),
        Rule(model="hang", hang=True),
        Rule(model="cut", reply="a b c d e f", cut_stream_after=2),
        Rule(model="leaky", reply=f"your key is {KEY}"),
        Rule(model="keyless", reply="none of the above"),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", KEY)


@pytest.fixture(params=["direct", "litellm"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def entry(name: str, url: str, **extra: Any) -> Any:
    return parse_entry(model_entry(name, url, **extra), "test")


async def test_streams_text_tokens_cost_and_timings(upstream: Upstream, path: str) -> None:
    four = entry("four", upstream.url, adapter=path)
    assert build_target(four).direct == (path == "direct")
    result = await acomplete(four, ASK, {"temperature": 0})
    assert result.ok and result.text.strip() == "the answer is 4"
    # The stand-in counts words: 5 prompt words, 4 answer words, sent as `usage`.
    assert (result.prompt_tokens, result.completion_tokens) == (5, 4)
    assert result.cost_usd == pytest.approx(9 * PRICE)
    assert result.ttft_ms is not None and 50 <= result.ttft_ms < result.latency_ms
    assert result.latency_ms >= 50 + 3 * 20  # first-byte delay plus chunk delays
    sent = upstream.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0


async def test_missing_usage_is_counted_not_zero(upstream: Upstream, path: str) -> None:
    result = await acomplete(entry("nousage", upstream.url, adapter=path), ASK)
    assert result.ok and result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.cost_usd > 0


async def test_server_error_is_data_with_status(upstream: Upstream, path: str) -> None:
    result = await acomplete(entry("down", upstream.url, adapter=path), ASK)
    assert not result.ok and result.status == 500 and result.retryable
    assert "scripted failure 500" in (result.error or "")


async def test_rate_limit_carries_retry_after(upstream: Upstream, path: str) -> None:
    result = await acomplete(entry("limited", upstream.url, adapter=path), ASK)
    assert result.status == 429 and result.retry_after_s == 1.5 and result.retryable


async def test_hang_times_out_as_retryable_error(upstream: Upstream, path: str) -> None:
    result = await acomplete(entry("hang", upstream.url, adapter=path), ASK, timeout_s=0.5)
    assert not result.ok and result.retryable and result.latency_ms < 5000


async def test_a_models_own_timeout_bounds_the_call(upstream: Upstream, path: str) -> None:
    # litellm_params.timeout is LiteLLM's own key: honoured (the shorter limit wins), not a
    # second `timeout` argument beside the runner's.
    fine = await acomplete(
        entry("four", upstream.url, adapter=path, litellm_params={"timeout": 30}), ASK
    )
    assert fine.ok  # (and litellm's first-call imports are paid before timing the next one)
    hung = entry("hang", upstream.url, adapter=path, litellm_params={"timeout": 0.5})
    result = await acomplete(hung, ASK, timeout_s=60)
    assert not result.ok and result.retryable and result.latency_ms < 5000


async def test_cut_stream_is_an_error_keeping_partial_text(upstream: Upstream, path: str) -> None:
    result = await acomplete(entry("cut", upstream.url, adapter=path), ASK)
    assert not result.ok and result.retryable
    assert result.text.split() == ["a", "b"]


async def test_resolved_key_never_returned(upstream: Upstream, path: str) -> None:
    result = await acomplete(entry("leaky", upstream.url, adapter=path), ASK)
    assert KEY not in result.text and "***" in result.text
    assert upstream.headers[-1]["authorization"] == f"Bearer {KEY}"  # it was sent, though
    assert scrub(f"401 Incorrect API key provided: {KEY}", [KEY]).endswith("***")


def test_missing_env_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEOFF_TEST_KEY")
    with pytest.raises(ConfigError, match="TRADEOFF_TEST_KEY") as info:
        call_kwargs(entry("four", "http://127.0.0.1:9"))
    assert KEY not in str(info.value)


def test_unknown_price_names_model_and_override() -> None:
    raw = model_entry("mystery", "http://127.0.0.1:9")
    del raw["litellm_params"]["input_cost_per_token"]
    del raw["litellm_params"]["output_cost_per_token"]
    with pytest.raises(ConfigError) as info:
        token_prices(parse_entry(raw, "test"))
    assert "'mystery'" in str(info.value) and "input_cost_per_token" in str(info.value)


def test_bundled_price_map_is_used_without_override() -> None:
    raw = {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o"}}
    prices = token_prices(parse_entry(raw, "test"))
    assert prices[0] > 0 and prices[1] > prices[0]


async def test_local_entry_uses_calibrated_per_token_prices(upstream: Upstream, path: str) -> None:
    calibrated = entry("four", upstream.url, tier="local", gpu_hourly_usd=2.0, adapter=path)
    result = await acomplete(calibrated, ASK)
    assert result.cost_usd == pytest.approx((5 + 4) * PRICE)
    raw = {
        "model_name": "uncalibrated",
        "litellm_params": {"model": "hosted_vllm/llama", "api_base": upstream.url},
        "tier": "local",
        "gpu_hourly_usd": 2.0,
    }
    with pytest.raises(ConfigError, match="gpu_hourly_usd"):
        await acomplete(parse_entry(raw, "test"), ASK)
    assert all(r["model"] != "llama" for r in upstream.requests)  # refused before calling


def test_a_keyless_openai_compatible_server_gets_a_placeholder_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local = ModelEntry("local", {"model": "openai/m", "api_base": "http://127.0.0.1:1/v1"})
    assert call_kwargs(local)["api_key"] == "none"
    hosted = ModelEntry("gpt", {"model": "openai/gpt-4o"})  # OpenAI itself: its own key rules
    assert "api_key" not in call_kwargs(hosted)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert "api_key" not in call_kwargs(local)  # litellm uses the environment's key


async def test_the_placeholder_key_is_not_scrubbed_from_answers(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    raw = model_entry("keyless", upstream.url, adapter=path)
    del raw["litellm_params"]["api_key"]
    result = await acomplete(parse_entry(raw, "test"), ASK)
    assert result.ok and result.text.strip() == "none of the above"


def test_an_eval_of_openai_compatible_models_never_imports_litellm(upstream: Upstream) -> None:
    # The direct path is the runner's speed and memory: litellm is loaded only when needed.
    code = f"""
import os, sys, tempfile
from pathlib import Path
from tradeoff.evals.registry import Registry, parse_entry
from tradeoff.evals.runner import EvalSpec, run_eval
from tradeoff.evals.store import Store
from tests.evals.runner_fixtures import add_items, model_entry, qa_items
os.environ["TRADEOFF_TEST_KEY"] = "x"
with tempfile.TemporaryDirectory() as tmp:
    store = Store(Path(tmp) / "s.duckdb")
    add_items(store, "qa", qa_items(3))
    registry = Registry([parse_entry(model_entry("four", {upstream.url!r}), "t")])
    report = run_eval(store, registry, EvalSpec(dataset="qa", models=["four"], progress=False))
print(report.recorded, "litellm" in sys.modules)
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["3", "False"]
