"""The litellm adapter: the one module that imports litellm and calls it.

litellm is imported lazily, with `LITELLM_LOCAL_MODEL_COST_MAP=True` so its price map comes
from the installed package and never from the network.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from evals.errors import ConfigError
from evals.registry import ModelEntry


@cache
def litellm() -> Any:
    """The litellm module, imported once with the bundled (offline) price map."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm as _litellm

    _litellm.telemetry = False
    _litellm.suppress_debug_info = True
    return _litellm


def token_prices(entry: ModelEntry) -> tuple[float, float]:
    """USD per (input, output) token: the entry's override, else litellm's bundled map.

    A model with no known price is an error, never a silent $0 (litellm returns 0.0 for
    names it does not know, and for some it does).
    """
    override = entry.price_override
    if override is not None:
        return override
    info = litellm().model_cost.get(entry.litellm_model)
    if info is None and "/" in entry.litellm_model:
        info = litellm().model_cost.get(entry.litellm_model.split("/", 1)[1])
    prices = (
        (
            float(info.get("input_cost_per_token") or 0.0),
            float(info.get("output_cost_per_token") or 0.0),
        )
        if info
        else (0.0, 0.0)
    )
    if prices == (0.0, 0.0):
        hint = (
            "gpu_hourly_usd (and run `tradeoff local attach` to calibrate)"
            if entry.tier == "local"
            else "litellm_params.input_cost_per_token and output_cost_per_token"
        )
        raise ConfigError(
            f"no price known for model {entry.name!r} ({entry.litellm_model}); set {hint} "
            "in models.yaml"
        )
    return prices
