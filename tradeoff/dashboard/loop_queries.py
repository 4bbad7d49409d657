"""The dashboard's reads of the loop's tables (`policy_versions`, `policy_events`, `loop_pairs`),
in portable SQL. The monitor's own readings come from the library (`policies.loop`)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from tradeoff.evals.store import Connection

Con = Connection


def _doc(value: Any) -> dict[str, Any]:
    doc = json.loads(value) if isinstance(value, str) else value
    return doc if isinstance(doc, dict) else {}


def versions(con: Con, name: str) -> list[dict[str, Any]]:
    """Every version of `name`, oldest first: version, source, created_at, detail, and its
    artifact (family, params, models, requirement, metrics)."""
    rows = con.execute(
        "SELECT v.version, v.source, v.created_at, CAST(v.detail AS VARCHAR), "
        "CAST(p.artifact AS VARCHAR) FROM policy_versions v "
        "LEFT JOIN policies p ON p.policy_id = v.policy_id WHERE v.name = ? ORDER BY v.version",
        [name],
    ).fetchall()
    return [
        {
            "version": int(r[0]),
            "source": r[1],
            "created_at": r[2],
            "detail": _doc(r[3]),
            "artifact": _doc(r[4]),
        }
        for r in rows
    ]


def events(con: Con, name: str) -> list[dict[str, Any]]:
    """What happened to `name`'s versions, in order (the epoch of a promotion is its seq)."""
    rows = con.execute(
        "SELECT seq, version, event, CAST(detail AS VARCHAR), happened_at FROM policy_events "
        "WHERE name = ? ORDER BY seq",
        [name],
    ).fetchall()
    return [
        {
            "seq": int(r[0]),
            "version": int(r[1]),
            "event": r[2],
            "detail": _doc(r[3]),
            "happened_at": r[4],
        }
        for r in rows
    ]


def shadow_spend(con: Con, name: str) -> pd.DataFrame:
    """Every graded pair's time, epoch and shadow spend, in grading order (for a cumulative
    chart; one row per pair, at most what the loop graded)."""
    return con.execute(
        "SELECT graded_at, epoch, version, coalesce(shadow_cost_usd, 0) AS shadow_usd "
        "FROM loop_pairs WHERE policy = ? ORDER BY graded_at, request_id",
        [name],
    ).df()


def promise(con: Con, name: str) -> dict[str, Any] | None:
    """What the serving version of `name` promised (its held-out figures), or None."""
    row = con.execute(
        """
        SELECT e.version, CAST(p.metrics AS VARCHAR) FROM policy_events e
        JOIN policy_versions v ON v.name = e.name AND v.version = e.version
        JOIN policies p ON p.policy_id = v.policy_id
        WHERE e.name = ? AND e.event = 'promoted' ORDER BY e.seq DESC LIMIT 1
        """,
        [name],
    ).fetchone()
    if row is None:
        return None
    metrics = _doc(row[1])
    return {
        "version": int(row[0]),
        "savings": metrics.get("savings_vs_baseline"),
        "savings_ci": metrics.get("savings_ci"),
        "kept": metrics.get("accuracy_vs_baseline"),
        "kept_ci": metrics.get("accuracy_vs_baseline_ci"),
    }
