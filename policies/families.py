"""Imports every bundled family so each registers itself with `policies.base.FAMILIES`."""

from __future__ import annotations

from policies import single, task_table

__all__ = ["single", "task_table"]
