"""Errors raised by policies, fitting and the requirement language."""

from __future__ import annotations

from evals.errors import ConfigError, UsageError


class UnknownFamilyError(ConfigError):
    """A policy file names a family that is not registered."""


class RequirementError(UsageError):
    """A requirement statement does not parse; the message points at the bad word."""


class PolicyFileError(ConfigError):
    """A policy artifact cannot be read (missing, not JSON, wrong version)."""
