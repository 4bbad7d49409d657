"""The cost arithmetic: GPU time split between prefill and decode, then priced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeoff.evals.errors import UsageError
from tradeoff.evals.local.cost import Phase, TokenTimes, prices_per_token, split_gpu_time
from tradeoff.evals.local.errors import CalibrationError


def phases(a: float, b: float) -> tuple[Phase, Phase]:
    """Two phases whose wall time follows T = a*input + b*output exactly."""
    prefill = Phase(requests=8, input_tokens=8 * 512, output_tokens=8, seconds=0.0)
    decode = Phase(requests=8, input_tokens=8 * 8, output_tokens=8 * 128, seconds=0.0)
    return (
        Phase(8, prefill.input_tokens, 8, a * prefill.input_tokens + b * 8),
        Phase(8, decode.input_tokens, decode.output_tokens, a * 64 + b * decode.output_tokens),
    )


@given(
    a=st.floats(min_value=1e-7, max_value=1e-2),
    ratio=st.floats(min_value=1.0, max_value=200.0),
)
def test_solving_recovers_the_per_token_times(a: float, ratio: float) -> None:
    prefill, decode = phases(a, a * ratio)
    times = split_gpu_time(prefill, decode)
    assert times.method == "solved"
    assert times.seconds_per_input_token == pytest.approx(a, rel=1e-6)
    assert times.seconds_per_output_token == pytest.approx(a * ratio, rel=1e-6)


def test_noise_that_hides_prefill_falls_back_to_upper_bounds() -> None:
    # The prefill phase ran faster than its own output tokens alone would take: a < 0.
    prefill = Phase(requests=4, input_tokens=2048, output_tokens=4, seconds=0.01)
    decode = Phase(requests=4, input_tokens=32, output_tokens=512, seconds=2.0)
    times = split_gpu_time(prefill, decode)
    assert times.method == "bounded"
    assert times.seconds_per_input_token == pytest.approx(0.01 / 2048)
    assert times.seconds_per_output_token == pytest.approx(2.0 / 512)


def test_no_tokens_is_an_error() -> None:
    empty = Phase(requests=1, input_tokens=0, output_tokens=0, seconds=1.0)
    with pytest.raises(CalibrationError, match="no input or no output tokens"):
        split_gpu_time(empty, empty)


def test_prices_are_gpu_dollars_per_busy_second_times_seconds_per_token() -> None:
    times = TokenTimes(seconds_per_input_token=1e-4, seconds_per_output_token=1e-2, method="x")
    # $3.60/h = $0.001/s; at 50% utilisation a busy second costs $0.002.
    price_in, price_out = prices_per_token(times, gpu_hourly_usd=3.6, utilisation=0.5)
    assert price_in == pytest.approx(2e-7)  # $0.20 per 1M input tokens
    assert price_out == pytest.approx(2e-5)  # $20 per 1M output tokens
    full_in, _ = prices_per_token(times, gpu_hourly_usd=3.6, utilisation=1.0)
    assert full_in == pytest.approx(price_in / 2)


@pytest.mark.parametrize("utilisation", [0.0, -0.1, 1.5])
def test_utilisation_outside_0_1_is_refused(utilisation: float) -> None:
    times = TokenTimes(1e-4, 1e-2, "solved")
    with pytest.raises(UsageError, match="utilisation"):
        prices_per_token(times, 1.0, utilisation)


def test_phase_rates() -> None:
    phase = Phase(requests=2, input_tokens=300, output_tokens=30, seconds=1.5)
    assert (phase.input_tps, phase.output_tps) == (200.0, 20.0)
