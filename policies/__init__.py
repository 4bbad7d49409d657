"""Routing policies: families, the requirement language, Optuna fitting, replay with CIs."""

from policies.base import FAMILIES, Plan, Policy, RouteRequest, create_policy, register_family

__all__ = ["FAMILIES", "Plan", "Policy", "RouteRequest", "create_policy", "register_family"]
