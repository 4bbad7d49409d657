"""Routing policies: families, the requirement language, cross-fitted fitting with a valid
acceptance test, replay with CIs."""

from typing import Any

from tradeoff.policies.artifact import PolicyArtifact, load_artifact, save_artifact
from tradeoff.policies.families.base import (
    FAMILIES,
    Plan,
    Policy,
    RouteRequest,
    create_policy,
    flatten_messages,
    register_family,
)
from tradeoff.policies.fit.options import FitOptions

__all__ = [
    "FAMILIES",
    "FitOptions",
    "Plan",
    "Policy",
    "PolicyArtifact",
    "RouteRequest",
    "compute_frontier",
    "create_policy",
    "fit_policy",
    "flatten_messages",
    "load_artifact",
    "register_family",
    "save_artifact",
]


def __getattr__(name: str) -> Any:
    # Fitting pulls in scikit-learn and scipy: import it on first use, not with the package
    # (the proxy only needs load_artifact).
    if name == "fit_policy":
        from tradeoff.policies.fit.fitting import fit_policy

        return fit_policy
    if name == "compute_frontier":
        from tradeoff.policies.replay.frontier import compute_frontier

        return compute_frontier
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
