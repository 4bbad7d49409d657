"""The calibration run: how many input and output tokens per second a server does at a concurrency.

Two phases (see `cost.py` for why two), each `requests` completions sent `concurrency` at a time
to `/v1/completions`, repeated for `rounds` rounds (a shared machine is noisy: the record keeps
each round's throughput beside the pooled figure that sets the prices):

- prefill: `prompt_tokens`-long prompts, `max_tokens=1`;
- decode: 8-token prompts, `max_tokens` output tokens with `ignore_eos` (a vLLM extension) so
  every request generates exactly that many.

Prompts are lists of random token ids: their length is exact whatever the tokenizer, and no two
share a prefix, so vLLM's prefix cache cannot skip the prefill being measured. Token counts come
from each response's `usage`; vLLM's /metrics counters are read before and after each phase as a
cross-check (they also count any other traffic the server had meanwhile), and stand in when a
server omits `usage`.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from tradeoff.evals.local.cost import Phase, TokenTimes, pooled, prices_per_token, split_gpu_time
from tradeoff.evals.local.errors import CalibrationError
from tradeoff.evals.local.health import root_url
from tradeoff.evals.local.metrics import token_counters

DECODE_PROMPT_TOKENS = 8
# Ids below 100 are often special or byte tokens; 100..199 exist in any real vocabulary.
TOKEN_ID_RANGE = (100, 200)


@dataclass(frozen=True)
class CalibrationSettings:
    """The shape of the calibration load."""

    concurrency: int = 8
    requests: int = 16  # per phase
    prompt_tokens: int = 512
    max_tokens: int = 128
    rounds: int = 3
    timeout_s: float = 300.0

    def fitted_to(self, max_model_len: int | None) -> CalibrationSettings:
        """Shrink prompt and output lengths to fit the served context length."""
        if not max_model_len:
            return self
        prompt = max(1, min(self.prompt_tokens, max_model_len - 1))
        output = max(1, min(self.max_tokens, max_model_len - DECODE_PROMPT_TOKENS))
        return replace(self, prompt_tokens=prompt, max_tokens=output)


@dataclass(frozen=True)
class Calibration:
    """Measured throughput and the prices derived from it; stored with the model."""

    prefill: Phase
    decode: Phase
    times: TokenTimes
    settings: CalibrationSettings
    gpu_hourly_usd: float
    utilisation: float
    input_cost_per_token: float
    output_cost_per_token: float
    measured_at: str
    metrics: dict[str, Any] = field(default_factory=dict)
    rounds: list[TokenTimes] = field(default_factory=list)

    @property
    def input_tokens_per_s(self) -> float:
        """Input tokens per GPU-second when only prefilling, at the calibrated concurrency."""
        return 1.0 / self.times.seconds_per_input_token

    @property
    def output_tokens_per_s(self) -> float:
        return 1.0 / self.times.seconds_per_output_token

    def to_dict(self) -> dict[str, Any]:
        """Plain data for models.yaml's `calibration` mapping and the store's JSON column."""
        return {
            "measured_at": self.measured_at,
            "gpu_hourly_usd": self.gpu_hourly_usd,
            "utilisation": self.utilisation,
            "concurrency": self.settings.concurrency,
            "input_tokens_per_s": round(self.input_tokens_per_s, 3),
            "output_tokens_per_s": round(self.output_tokens_per_s, 3),
            "usd_per_1m_input": self.input_cost_per_token * 1e6,
            "usd_per_1m_output": self.output_cost_per_token * 1e6,
            "method": self.times.method,
            "rounds": [
                {
                    "input_tokens_per_s": round(1.0 / t.seconds_per_input_token, 3),
                    "output_tokens_per_s": round(1.0 / t.seconds_per_output_token, 3),
                    "method": t.method,
                }
                for t in self.rounds
            ],
            "prefill": asdict(self.prefill),
            "decode": asdict(self.decode),
            "settings": asdict(self.settings),
            "metrics": self.metrics,
        }


def calibrate(
    base_url: str,
    model: str,
    *,
    gpu_hourly_usd: float,
    utilisation: float,
    settings: CalibrationSettings | None = None,
    seed: int | None = None,
) -> Calibration:
    """Run the phases against the server at `base_url` serving `model`; derive prices."""
    settings = settings or CalibrationSettings()
    if min(settings.concurrency, settings.requests, settings.rounds) < 1:
        raise CalibrationError("calibration needs concurrency, requests and rounds >= 1")
    base = root_url(base_url)
    rng = random.Random(seed)
    prefills: list[Phase] = []
    decodes: list[Phase] = []
    metrics: dict[str, list[dict[str, float] | None]] = {"prefill": [], "decode": []}
    for _ in range(settings.rounds):
        phase, seen = _measured_phase(base, model, settings, settings.prompt_tokens, 1, rng)
        prefills.append(phase)
        metrics["prefill"].append(seen)
        phase, seen = _measured_phase(
            base, model, settings, DECODE_PROMPT_TOKENS, settings.max_tokens, rng
        )
        decodes.append(phase)
        metrics["decode"].append(seen)
    prefill, decode = pooled(prefills), pooled(decodes)
    times = split_gpu_time(prefill, decode)
    price_in, price_out = prices_per_token(times, gpu_hourly_usd, utilisation)
    return Calibration(
        prefill=prefill,
        decode=decode,
        times=times,
        settings=settings,
        gpu_hourly_usd=gpu_hourly_usd,
        utilisation=utilisation,
        input_cost_per_token=price_in,
        output_cost_per_token=price_out,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        metrics={kind: _summed(deltas) for kind, deltas in metrics.items()},
        rounds=[split_gpu_time(p, d) for p, d in zip(prefills, decodes, strict=True)],
    )


def _summed(deltas: list[dict[str, float] | None]) -> dict[str, float] | None:
    """The /metrics token deltas over all rounds (None if any round could not read them)."""
    if not deltas or any(d is None for d in deltas):
        return None
    return {key: sum(d[key] for d in deltas if d is not None) for key in deltas[0] or {}}


def _measured_phase(
    base: str,
    model: str,
    settings: CalibrationSettings,
    prompt_tokens: int,
    max_tokens: int,
    rng: random.Random,
) -> tuple[Phase, dict[str, float] | None]:
    prompts = [
        [rng.randrange(*TOKEN_ID_RANGE) for _ in range(prompt_tokens)]
        for _ in range(settings.requests)
    ]
    before = token_counters(base)
    phase = asyncio.run(_run_phase(base, model, settings, prompts, max_tokens))
    after = token_counters(base)
    delta = None
    if before is not None and after is not None:
        delta = {"input_tokens": after[0] - before[0], "output_tokens": after[1] - before[1]}
        if phase.input_tokens == 0 and phase.output_tokens == 0:
            # No usage in the responses: fall back on the server's own counters.
            phase = Phase(
                phase.requests,
                int(delta["input_tokens"]),
                int(delta["output_tokens"]),
                phase.seconds,
            )
    return phase, delta


async def _run_phase(
    base: str,
    model: str,
    settings: CalibrationSettings,
    prompts: list[list[int]],
    max_tokens: int,
) -> Phase:
    gate = asyncio.Semaphore(settings.concurrency)
    limits = httpx.Limits(max_connections=settings.concurrency)
    async with httpx.AsyncClient(timeout=settings.timeout_s, limits=limits) as client:

        async def one(prompt: list[int]) -> tuple[int, int]:
            async with gate:
                body = {
                    "model": model,
                    "prompt": prompt,
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                    "ignore_eos": True,
                }
                try:
                    response = await client.post(f"{base}/v1/completions", json=body)
                except httpx.HTTPError as exc:
                    raise CalibrationError(
                        f"calibration request to {base} failed: {exc!r}; is the server up?"
                    ) from exc
                if response.status_code != 200:
                    raise CalibrationError(
                        f"calibration request to {base} answered {response.status_code}: "
                        f"{response.text[:300]}; lower --prompt-tokens/--max-tokens to fit "
                        "the model's context"
                    )
                usage = response.json().get("usage") or {}
                return int(usage.get("prompt_tokens") or 0), int(
                    usage.get("completion_tokens") or 0
                )

        started = time.perf_counter()
        try:
            # A TaskGroup cancels and awaits the other requests when one fails.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(p)) for p in prompts]
        except ExceptionGroup as errors:
            raise errors.exceptions[0] from None
        counts = [task.result() for task in tasks]
        seconds = time.perf_counter() - started
    return Phase(
        requests=len(prompts),
        input_tokens=sum(c[0] for c in counts),
        output_tokens=sum(c[1] for c in counts),
        seconds=seconds,
    )
