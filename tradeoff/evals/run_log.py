"""The `runs` row of an eval: opened as `running`, closed with its final status.

Statuses: `running`, `completed`, `budget_exhausted` (stopped at --max-cost), `interrupted`
(Ctrl-C), `failed` (a bug or a store error), `killed` (the process died without closing its
row, e.g. kill -9; found by the next eval on the same host, whose pid check sees it gone).
`n_outcomes` and `spend_usd` are updated with every batch the writer commits, so a killed
run's row still says what it recorded and spent.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from tradeoff.evals.store import Store


def open_run(store: Store, run_id: str, dataset: str, params: dict[str, Any]) -> None:
    """Insert the run as `running`, first closing this host's runs whose process is gone."""
    owner = {"host": socket.gethostname(), "pid": os.getpid()}
    with store.transaction(threads=1) as con:
        stale = con.execute(
            "SELECT run_id, params FROM runs WHERE kind = 'eval' AND status = 'running'"
        ).fetchall()
        for stale_id, raw in stale:
            if _is_dead(json.loads(raw or "{}").get("owner") or {}):
                con.execute("UPDATE runs SET status = 'killed' WHERE run_id = ?", [stale_id])
        con.execute(
            "INSERT INTO runs (run_id, kind, dataset, source, params, status, n_outcomes, "
            "spend_usd) VALUES (?, 'eval', ?, 'tradeoff eval', ?, 'running', 0, 0)",
            [run_id, dataset, json.dumps({**params, "owner": owner})],
        )


def close_run(store: Store, run_id: str, status: str, extra_spend_usd: float = 0.0) -> None:
    """Set the final status; `extra_spend_usd` is spend outside the outcomes (a judge)."""
    with store.transaction(threads=1) as con:
        con.execute(
            "UPDATE runs SET status = ?, finished_at = current_timestamp, "
            "spend_usd = coalesce(spend_usd, 0) + ? WHERE run_id = ?",
            [status, extra_spend_usd, run_id],
        )


def _is_dead(owner: dict[str, Any]) -> bool:
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False  # another machine's run: we cannot tell
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False
