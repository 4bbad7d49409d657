"""Errors raised by policies, fitting and the requirement language."""

from __future__ import annotations

from tradeoff.evals.errors import ConfigError, RequirementError, TradeoffError, UsageError

__all__ = [
    "DataError",
    "InfeasibleError",
    "PolicyFileError",
    "PolicyParamsError",
    "RequirementError",  # defined in evals, beside the requirement language
    "UnknownFamilyError",
    "UnknownPolicyError",
]


class UnknownFamilyError(ConfigError):
    """A policy file names a family that is not registered."""


class PolicyParamsError(ConfigError):
    """A family was given parameters it cannot use (no models, wrong types, unknown keys)."""


class PolicyFileError(ConfigError):
    """A policy artifact cannot be read (missing, not JSON, wrong version)."""


class UnknownPolicyError(PolicyFileError):
    """No stored policy (or version) by that name: like a file that does not exist, a usage
    mistake (exit 2)."""

    exit_code = 2


class DataError(UsageError):
    """The store lacks what a command needs (dataset, outcomes, split, baseline model)."""


class InfeasibleError(TradeoffError):
    """No policy meets the requirement with confidence; the message shows the closest points."""

    exit_code = 1
