"""Imports every bundled family so each registers itself with `policies.base.FAMILIES`."""

from __future__ import annotations

from tradeoff.policies import best_of_k, cascade, learned, single, task_table

__all__ = ["best_of_k", "cascade", "learned", "single", "task_table"]
