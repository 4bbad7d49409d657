"""The local tier: vLLM-served models and their GPU-time cost model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeoff.evals.local.describe import describe_calibration

if TYPE_CHECKING:
    from tradeoff.evals.local.attach import attach_server
    from tradeoff.evals.local.calibration import Calibration, CalibrationSettings, calibrate

__all__ = [
    "Calibration",
    "CalibrationSettings",
    "attach_server",
    "calibrate",
    "describe_calibration",
]


def __getattr__(name: str) -> Any:
    # Attaching and calibrating pull in httpx: import them on first use, so that `tradeoff
    # --help` (which imports evals.local.cli, hence this package) stays fast.
    if name == "attach_server":
        from tradeoff.evals.local.attach import attach_server

        return attach_server
    if name in ("Calibration", "CalibrationSettings", "calibrate"):
        from tradeoff.evals.local import calibration

        return getattr(calibration, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
