"""Registering a local server: its models.yaml entry (tier `local`) and its row in the store.

The entry carries litellm's own price keys, so the eval runner and the proxy price a local model
through `evals.llm.token_prices` like any other; the `calibration` mapping beside them records
where those prices came from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tradeoff.evals.registry import ModelEntry, load_registry, upsert_model
from tradeoff.evals.store import open_store

PROVIDER = "hosted_vllm"
PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")


def local_entry(
    name: str,
    served_name: str,
    base_url: str,
    *,
    gpu_hourly_usd: float | None,
    calibration: dict[str, Any] | None,
    previous: ModelEntry | None = None,
) -> ModelEntry:
    """The entry for `served_name` at `base_url` (root URL), keeping a previous entry's extras.

    A new calibration replaces the previous prices; without one, the previous (now possibly
    stale) prices and calibration are dropped rather than kept beside a new server.
    """
    params: dict[str, Any] = dict(previous.litellm_params) if previous else {}
    for key in PRICE_KEYS:
        params.pop(key, None)
    params["model"] = f"{PROVIDER}/{served_name}"
    params["api_base"] = f"{base_url}/v1"
    extra = {k: v for k, v in (previous.extra if previous else {}).items() if k != "calibration"}
    if calibration is not None:
        params["input_cost_per_token"] = calibration["usd_per_1m_input"] / 1e6
        params["output_cost_per_token"] = calibration["usd_per_1m_output"] / 1e6
        extra["calibration"] = calibration
    return ModelEntry(
        name=name, litellm_params=params, tier="local", gpu_hourly_usd=gpu_hourly_usd, extra=extra
    )


def previous_entry(config: str | os.PathLike[str] | None, name: str) -> ModelEntry | None:
    registry = load_registry(config, required=False)
    return registry.entries.get(name)


def register_local(
    entry: ModelEntry,
    *,
    config: str | os.PathLike[str] | None,
    db: str | os.PathLike[str] | None,
    source: str,
) -> Path:
    """Write `entry` into models.yaml and the store's models table; return the yaml path."""
    path = upsert_model(config, entry)
    prices = entry.price_override
    calibration = entry.extra.get("calibration")
    with open_store(db).transaction() as con:
        con.execute(
            "INSERT INTO models (name, litellm_model, api_base, tier, input_cost_per_token, "
            "output_cost_per_token, gpu_hourly_usd, calibration, source, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp) ON CONFLICT (name) DO UPDATE "
            "SET litellm_model = excluded.litellm_model, api_base = excluded.api_base, "
            "tier = excluded.tier, input_cost_per_token = excluded.input_cost_per_token, "
            "output_cost_per_token = excluded.output_cost_per_token, "
            "gpu_hourly_usd = excluded.gpu_hourly_usd, calibration = excluded.calibration, "
            "source = excluded.source, updated_at = excluded.updated_at",
            [
                entry.name,
                entry.litellm_model,
                entry.api_base,
                entry.tier,
                prices[0] if prices else None,
                prices[1] if prices else None,
                entry.gpu_hourly_usd,
                json.dumps(calibration) if calibration is not None else None,
                source,
            ],
        )
    return path
