"""The calibration run against a server whose time per token is known."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.upstream import Rule, Upstream
from tradeoff.evals.local.calibration import Calibration, CalibrationSettings, calibrate
from tradeoff.evals.local.errors import CalibrationError

A, B = 0.001, 0.01  # the stand-in's seconds per input and per output token
SMALL = CalibrationSettings(concurrency=2, requests=4, prompt_tokens=200, max_tokens=32, rounds=2)


@pytest.fixture(scope="module")
def measured() -> Iterator[tuple[Calibration, Upstream]]:
    rule = Rule(prefill_s_per_token=A, decode_s_per_token=B)
    with Upstream([rule], served_models=["tiny"]) as up:
        result = calibrate(
            up.url, "tiny", gpu_hourly_usd=3.6, utilisation=0.5, settings=SMALL, seed=1
        )
        yield result, up


def test_recovers_gpu_seconds_per_token_at_the_concurrency(
    measured: tuple[Calibration, Upstream],
) -> None:
    result, _ = measured
    # Two requests at a time share the wall clock: each token costs half its latency.
    assert result.times.method == "solved"
    assert result.times.seconds_per_input_token == pytest.approx(A / 2, rel=0.3)
    assert result.times.seconds_per_output_token == pytest.approx(B / 2, rel=0.3)
    assert result.input_cost_per_token == pytest.approx(
        0.002 * result.times.seconds_per_input_token
    )


def test_phases_served_exact_token_counts_and_metrics_agree(
    measured: tuple[Calibration, Upstream],
) -> None:
    result, up = measured
    # Two rounds of 4 requests per phase, pooled.
    assert (result.prefill.input_tokens, result.prefill.output_tokens) == (1600, 8)
    assert (result.decode.input_tokens, result.decode.output_tokens) == (64, 256)
    assert result.metrics["prefill"] == {"input_tokens": 1600.0, "output_tokens": 8.0}
    assert result.metrics["decode"] == {"input_tokens": 64.0, "output_tokens": 256.0}
    prompts = [tuple(r["prompt"][:16]) for r in up.completion_requests]
    assert len(set(prompts)) == len(prompts)  # no shared prefix for the prefix cache to skip
    assert all(r["ignore_eos"] for r in up.completion_requests)


def test_record_has_the_figures_and_settings(measured: tuple[Calibration, Upstream]) -> None:
    record = measured[0].to_dict()
    assert record["usd_per_1m_output"] == pytest.approx(measured[0].output_cost_per_token * 1e6)
    assert record["concurrency"] == 2
    assert record["utilisation"] == 0.5
    assert record["settings"]["prompt_tokens"] == 200
    # Each round's own throughput is kept, and the pooled figure lies within their range.
    assert len(record["rounds"]) == 2
    outs = [r["output_tokens_per_s"] for r in record["rounds"]]
    assert min(outs) * 0.999 <= record["output_tokens_per_s"] <= max(outs) * 1.001
    assert record["measured_at"].startswith("20")


def test_missing_usage_falls_back_on_the_metrics_counters() -> None:
    with Upstream([Rule(usage=False)], served_models=["tiny"]) as up:
        result = calibrate(up.url, "tiny", gpu_hourly_usd=1.0, utilisation=1.0, settings=SMALL)
    assert (result.prefill.input_tokens, result.decode.output_tokens) == (1600, 256)


def test_settings_shrink_to_the_context_length() -> None:
    fitted = CalibrationSettings(prompt_tokens=512, max_tokens=128).fitted_to(100)
    assert (fitted.prompt_tokens, fitted.max_tokens) == (99, 92)
    assert CalibrationSettings().fitted_to(None) == CalibrationSettings()


def test_server_refusing_the_prompt_says_what_to_lower() -> None:
    with (
        Upstream([Rule(status=400)], served_models=["tiny"]) as up,
        pytest.raises(CalibrationError, match=r"answered 400.*--prompt-tokens"),
    ):
        calibrate(up.url, "tiny", gpu_hourly_usd=1.0, utilisation=1.0, settings=SMALL)
