"""Imports every bundled family so each registers itself with `policies.families.base.FAMILIES`."""

from __future__ import annotations

from tradeoff.policies.families import best_of_k, cascade, learned, single, task_table

__all__ = ["best_of_k", "cascade", "learned", "single", "task_table"]
