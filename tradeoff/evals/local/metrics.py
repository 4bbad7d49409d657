"""Reading vLLM's Prometheus /metrics: the token counters calibration cross-checks.

Only the text exposition format's sample lines matter here (`name{labels} value [timestamp]`);
a counter with several label sets (one per model or engine) is summed.
"""

from __future__ import annotations

import math

import httpx

PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"


def parse_metrics(text: str) -> dict[str, float]:
    """{metric name: value summed over label sets} for every sample line in `text`."""
    totals: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, rest = _split_name(line)
        fields = rest.split()
        if not name or not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if math.isnan(value):
            continue
        totals[name] = totals.get(name, 0.0) + value
    return totals


def _split_name(line: str) -> tuple[str, str]:
    """('name', 'value ...') from `name{a="b"} value ...` or `name value ...`."""
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        close = line.rfind("}")
        return line[:brace], line[close + 1 :] if close != -1 else ""
    if space == -1:
        return "", ""
    return line[:space], line[space:]


def token_counters(base_url: str, *, timeout_s: float = 5.0) -> tuple[float, float] | None:
    """(prompt tokens, generation tokens) served so far, or None if /metrics lacks them."""
    try:
        response = httpx.get(f"{base_url}/metrics", timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    # A counter declared (HELP/TYPE) but without samples has counted nothing yet.
    if PROMPT_TOKENS not in response.text or GENERATION_TOKENS not in response.text:
        return None
    totals = parse_metrics(response.text)
    return totals.get(PROMPT_TOKENS, 0.0), totals.get(GENERATION_TOKENS, 0.0)
