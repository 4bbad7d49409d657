"""What each event in a policy's history changed, in words: "math: medium -> large", "promised
share 93.5% -> 97.1%", and why it happened (the fit, a refit's test, a rollback).

Pure functions over `loop_queries.versions` and `loop_queries.events`, tested without Streamlit.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["changes", "history_table"]


def _pct(value: Any) -> str:
    return "?" if not isinstance(value, int | float) else f"{value:.1%}"


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """How artifact `after` differs from `before` (family, models, routing, promise)."""
    out: list[str] = []
    if before.get("family") != after.get("family"):
        out.append(f"family {before.get('family')} → {after.get('family')}")
    old_models, new_models = set(before.get("models") or []), set(after.get("models") or [])
    if new_models - old_models:
        out.append("adds " + ", ".join(sorted(new_models - old_models)))
    if old_models - new_models:
        out.append("drops " + ", ".join(sorted(old_models - new_models)))
    old_params, new_params = before.get("params") or {}, after.get("params") or {}
    old_table, new_table = old_params.get("table"), new_params.get("table")
    if isinstance(old_table, dict) and isinstance(new_table, dict):
        for task in sorted(set(old_table) | set(new_table)):
            if old_table.get(task) != new_table.get(task):
                out.append(f"{task}: {old_table.get(task, '-')} → {new_table.get(task, '-')}")
    elif old_params != new_params and before.get("family") == after.get("family"):
        out.append("parameters refitted")
    if before.get("requirement") != after.get("requirement"):
        out.append(f"requirement {before.get('requirement')} → {after.get('requirement')}")
    old_m, new_m = before.get("metrics") or {}, after.get("metrics") or {}
    for key, label in (
        ("accuracy_vs_baseline", "promised share"),
        ("savings_vs_baseline", "promised savings"),
    ):
        if old_m.get(key) != new_m.get(key):
            out.append(f"{label} {_pct(old_m.get(key))} → {_pct(new_m.get(key))}")
    return out or ["no change"]


def _why(event: dict[str, Any], version: dict[str, Any] | None) -> str:
    detail = event["detail"]
    if event["event"] == "promoted":
        by = detail.get("by")
        if by == "rollback":
            return f"rolled back from version {detail.get('from')}"
        test = detail.get("test") or ((version or {}).get("detail") or {}).get("test") or {}
        if by == "refit":
            return f"refit passed its test: {test.get('reason', 'passed')}"
        if by == "explore":
            return "tradeoff explore: the baseline alone serves while candidates are explored"
        return "fitted and accepted by tradeoff fit" if by == "fit" else f"promoted ({by or '?'})"
    if event["event"] == "rejected":
        return f"refit candidate rejected: {detail.get('reason', '?')}"
    if event["event"] == "rolled_back":
        return f"rolled back to version {detail.get('to')}"
    if event["event"] == "violated":
        return "the live monitor found it breaking its requirement"
    if event["event"] == "explored":
        names = ", ".join(detail.get("candidates") or [])
        return f"exploring {names} in shadow against {detail.get('baseline')}"
    return event["event"]


def history_table(versions: list[dict[str, Any]], events: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per event, oldest first: when, which version, what happened, what changed
    against the version serving before it, and why."""
    by_version = {v["version"]: v for v in versions}
    serving: dict[str, Any] | None = None
    rows = []
    for event in events:
        version = by_version.get(event["version"])
        artifact = (version or {}).get("artifact") or {}
        if serving is None:
            changed = "first version"
        elif event["event"] in ("promoted", "rejected"):
            changed = "; ".join(changes(serving, artifact))
        else:
            changed = ""
        rows.append(
            {
                "When (UTC)": event["happened_at"],
                "Version": event["version"],
                "Event": event["event"],
                "What changed (vs the version serving before)": changed,
                "Why": _why(event, version),
            }
        )
        if event["event"] == "promoted":
            serving = artifact
    return pd.DataFrame(rows)
