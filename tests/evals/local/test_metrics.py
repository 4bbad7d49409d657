"""Parsing vLLM's Prometheus /metrics."""

from __future__ import annotations

import httpx

from tests.support.upstream import Upstream
from tradeoff.evals.local.metrics import (
    GENERATION_TOKENS,
    PROMPT_TOKENS,
    parse_metrics,
    token_counters,
)

# The shape vLLM 0.x exposes: HELP/TYPE lines, labels, _created samples, histograms, NaN.
VLLM_METRICS = """\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="tiny"} 1536.0
vllm:prompt_tokens_total{engine="1",model_name="tiny"} 64.0
# HELP vllm:prompt_tokens_created Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_created gauge
vllm:prompt_tokens_created{engine="0",model_name="tiny"} 1.7637e+09
vllm:generation_tokens_total{engine="0",model_name="tiny"} 2.56e+02
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="tiny"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="tiny"} 24.0
vllm:num_requests_running{engine="0",model_name="tiny"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} NaN
python_gc_objects_collected_total{generation="0"} 1234.0 1700000000000
"""


def test_counters_are_summed_over_label_sets() -> None:
    totals = parse_metrics(VLLM_METRICS)
    assert totals[PROMPT_TOKENS] == 1600.0
    assert totals[GENERATION_TOKENS] == 256.0
    assert totals["vllm:time_to_first_token_seconds_bucket"] == 24.0
    assert totals["python_gc_objects_collected_total"] == 1234.0  # timestamp ignored
    assert "vllm:kv_cache_usage_perc" not in totals


def test_garbage_lines_are_skipped() -> None:
    assert parse_metrics('no_value\nname{a="b"} notanumber\n\n  # comment\nok 1') == {"ok": 1.0}


def test_counters_follow_served_tokens() -> None:
    with Upstream(served_models=["tiny"]) as up:
        base = up.url.removesuffix("/v1")
        assert token_counters(base) == (0.0, 0.0)  # declared, nothing counted yet
        body = {"model": "tiny", "prompt": [5] * 40, "max_tokens": 7, "ignore_eos": True}
        httpx.post(f"{up.url}/completions", json=body).raise_for_status()
        httpx.post(f"{up.url}/completions", json=body).raise_for_status()
        assert token_counters(base) == (80.0, 14.0)


def test_no_metrics_endpoint_gives_none() -> None:
    assert token_counters("http://127.0.0.1:9") is None
