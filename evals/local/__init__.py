"""The local tier: vLLM-served models and their GPU-time cost model."""

from evals.local.attach import attach_server
from evals.local.calibration import Calibration, CalibrationSettings, calibrate
from evals.local.describe import describe_calibration

__all__ = [
    "Calibration",
    "CalibrationSettings",
    "attach_server",
    "calibrate",
    "describe_calibration",
]
