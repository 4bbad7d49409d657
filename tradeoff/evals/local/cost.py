"""The local tier's cost model: GPU dollars per hour -> USD per input and output token.

A rented GPU costs `gpu_hourly_usd` whether it is busy or not, so a token's price is the GPU
time it takes, at the calibrated concurrency, grossed up for the time the GPU sits idle:

    usd_per_input_token  = gpu_hourly_usd / 3600 * a / utilisation
    usd_per_output_token = gpu_hourly_usd / 3600 * b / utilisation

`a` and `b` are GPU-seconds per input (prefill) and output (decode) token, measured by two
calibration phases at the same concurrency: a prefill phase (long prompts, 1 output token) and a
decode phase (short prompts, many output tokens). Each phase's wall time is modelled as

    T = a * input_tokens + b * output_tokens

which gives two equations in `a` and `b`. Calibration repeats both phases for a few rounds and
solves on their sums (prices); each round's own solution gives the spread it records. When noise makes the solution non-positive (prefill is
often too cheap to see beside decode), each phase's whole time is charged to its dominant kind,
`a = T_prefill / input_tokens` and `b = T_decode / output_tokens`: upper bounds, so a local
model is never priced below what it measured ("bounded" in the calibration record).

Assumptions: traffic arrives at about the calibrated concurrency (higher concurrency batches more
and lowers `b`); prompts and outputs are of a similar length to the calibration's; utilisation
(default 0.5) is the share of the paid hours the server is actually busy at that throughput.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradeoff.evals.errors import UsageError
from tradeoff.evals.local.errors import CalibrationError

DEFAULT_UTILISATION = 0.5


@dataclass(frozen=True)
class Phase:
    """What one calibration phase served and how long it took (wall-clock seconds)."""

    requests: int
    input_tokens: int
    output_tokens: int
    seconds: float

    @property
    def input_tps(self) -> float:
        return self.input_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def output_tps(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


def pooled(phases: list[Phase]) -> Phase:
    """Several rounds of one phase as one: T = a*input + b*output still holds for the sums."""
    return Phase(
        requests=sum(p.requests for p in phases),
        input_tokens=sum(p.input_tokens for p in phases),
        output_tokens=sum(p.output_tokens for p in phases),
        seconds=sum(p.seconds for p in phases),
    )


@dataclass(frozen=True)
class TokenTimes:
    """GPU-seconds per input and per output token, and how they were obtained."""

    seconds_per_input_token: float
    seconds_per_output_token: float
    method: str  # "solved" (two equations) or "bounded" (each phase charged to one kind)


def split_gpu_time(prefill: Phase, decode: Phase) -> TokenTimes:
    """Solve T = a*input + b*output over the two phases (see the module docstring)."""
    if prefill.input_tokens <= 0 or decode.output_tokens <= 0:
        raise CalibrationError(
            "calibration served no input or no output tokens; check the server answers "
            "completions with usage"
        )
    p1, g1, t1 = prefill.input_tokens, prefill.output_tokens, prefill.seconds
    p2, g2, t2 = decode.input_tokens, decode.output_tokens, decode.seconds
    det = p1 * g2 - p2 * g1
    if det != 0:
        a = (t1 * g2 - t2 * g1) / det
        b = (p1 * t2 - p2 * t1) / det
        if a > 0 and b > 0:
            return TokenTimes(a, b, "solved")
    return TokenTimes(t1 / p1, t2 / g2, "bounded")


def prices_per_token(
    times: TokenTimes, gpu_hourly_usd: float, utilisation: float = DEFAULT_UTILISATION
) -> tuple[float, float]:
    """USD per (input, output) token for a GPU at `gpu_hourly_usd`, busy `utilisation` of the time."""
    if gpu_hourly_usd < 0:
        raise UsageError("gpu_hourly_usd must be >= 0")
    if not 0 < utilisation <= 1:
        raise UsageError(f"utilisation must be in (0, 1], got {utilisation}")
    usd_per_second = gpu_hourly_usd / 3600.0 / utilisation
    return (
        usd_per_second * times.seconds_per_input_token,
        usd_per_second * times.seconds_per_output_token,
    )
