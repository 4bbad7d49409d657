"""How a local model's calibration reads beside API prices (for `tradeoff models`)."""

from __future__ import annotations

from tradeoff.evals.registry import ModelEntry


def describe_calibration(entry: ModelEntry) -> str | None:
    """One line on where a local model's prices come from; None for a non-calibrated model.

    E.g. "$2.00/GPU-h at 50% utilisation, 4 concurrent: 1523 in + 61.2 out tok/s
    (55.1-66.0 over 3 rounds) -> $0.73 / $18.16 per 1M (2026-11-22)".
    """
    cal = entry.extra.get("calibration")
    if not isinstance(cal, dict):
        return None
    try:
        bound = " (upper bound)" if cal.get("method") == "bounded" else ""
        rounds = [float(r["output_tokens_per_s"]) for r in cal.get("rounds") or []]
        spread = (
            f" ({min(rounds):.4g}-{max(rounds):.4g} over {len(rounds)} rounds)"
            if len(rounds) > 1
            else ""
        )
        return (
            f"${float(cal['gpu_hourly_usd']):.2f}/GPU-h at "
            f"{float(cal['utilisation']):.0%} utilisation, {int(cal['concurrency'])} concurrent: "
            f"{float(cal['input_tokens_per_s']):.4g} in + "
            f"{float(cal['output_tokens_per_s']):.4g} out tok/s{spread} -> "
            f"${float(cal['usd_per_1m_input']):.4g} / ${float(cal['usd_per_1m_output']):.4g} "
            f"per 1M{bound} ({str(cal['measured_at'])[:10]})"
        )
    except (KeyError, TypeError, ValueError):
        return "calibration record is incomplete; rerun `tradeoff local calibrate`"
