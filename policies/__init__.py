"""Routing policies: families, the requirement language, Optuna fitting, replay with CIs."""

from policies.artifact import PolicyArtifact, load_artifact, save_artifact
from policies.base import (
    FAMILIES,
    Plan,
    Policy,
    RouteRequest,
    create_policy,
    flatten_messages,
    register_family,
)

__all__ = [
    "FAMILIES",
    "Plan",
    "Policy",
    "PolicyArtifact",
    "RouteRequest",
    "create_policy",
    "flatten_messages",
    "load_artifact",
    "register_family",
    "save_artifact",
]
