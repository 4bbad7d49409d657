"""Attaching a running server: find its model, calibrate its cost, register it."""

from __future__ import annotations

import os

from tradeoff.evals.errors import UsageError
from tradeoff.evals.local.calibration import CalibrationSettings, calibrate
from tradeoff.evals.local.cost import DEFAULT_UTILISATION
from tradeoff.evals.local.health import ServedModel, root_url, wait_until_healthy
from tradeoff.evals.local.registration import local_entry, previous_entry, register_local
from tradeoff.evals.registry import ModelEntry


def pick_model(models: list[ServedModel], wanted: str | None) -> ServedModel:
    """The served model named `wanted`, or the only one served."""
    if wanted is not None:
        for model in models:
            if model.id == wanted:
                return model
        ids = ", ".join(m.id for m in models)
        raise UsageError(f"the server does not serve {wanted!r} (it serves: {ids})")
    if len(models) != 1:
        ids = ", ".join(m.id for m in models)
        raise UsageError(f"the server serves several models ({ids}); choose one with --model")
    return models[0]


def attach_server(
    url: str,
    *,
    name: str | None = None,
    served: ServedModel | None = None,
    served_id: str | None = None,
    gpu_hourly_usd: float | None = None,
    utilisation: float = DEFAULT_UTILISATION,
    settings: CalibrationSettings | None = None,
    config: str | os.PathLike[str] | None = None,
    db: str | os.PathLike[str] | None = None,
    source: str = "local attach",
    ready_timeout_s: float = 30.0,
) -> ModelEntry:
    """Register the server at `url` as a local model, calibrated when a GPU price is known.

    The price is `gpu_hourly_usd`, else the one already in models.yaml for `name`. Without
    either the model is registered unpriced (the eval runner and proxy will ask for one).
    """
    base = root_url(url)
    if served is None:
        served = pick_model(wait_until_healthy(base, timeout_s=ready_timeout_s), served_id)
    name = name or served.id
    previous = previous_entry(config, name)
    if gpu_hourly_usd is None and previous is not None:
        gpu_hourly_usd = previous.gpu_hourly_usd
    calibration = None
    if gpu_hourly_usd is not None:
        settings = (settings or CalibrationSettings()).fitted_to(served.max_model_len)
        calibration = calibrate(
            base,
            served.id,
            gpu_hourly_usd=gpu_hourly_usd,
            utilisation=utilisation,
            settings=settings,
        ).to_dict()
    entry = local_entry(
        name,
        served.id,
        base,
        gpu_hourly_usd=gpu_hourly_usd,
        calibration=calibration,
        previous=previous,
    )
    register_local(entry, config=config, db=db, source=source)
    return entry
