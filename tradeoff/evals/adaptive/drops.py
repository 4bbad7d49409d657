"""The store's record of candidates an adaptive evaluation stopped measuring.

Items a dropped candidate was not run on have no outcome row: they are *not measured*, never
failures. `tradeoff fit` reads this table (`dropped_models`) to leave such a candidate out
rather than shrink every other model's data to the items it was measured on.
"""

from __future__ import annotations

from tradeoff.evals.adaptive.race import Drop
from tradeoff.evals.store import Connection, Store

UPSERT = """
INSERT INTO adaptive_drops (dataset, model, params_hash, after_items, reason, requirement, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dataset, model, params_hash) DO UPDATE SET
    after_items = excluded.after_items, reason = excluded.reason,
    requirement = excluded.requirement, run_id = excluded.run_id
"""
KEEP_FIRST = UPSERT.split(" DO UPDATE")[0] + " DO NOTHING"


def clear_drops(store: Store, dataset: str, models: list[str]) -> None:
    """Forget earlier drops of these candidates (a new race decides them again)."""
    with store.transaction() as con:
        for model in models:
            con.execute(
                "DELETE FROM adaptive_drops WHERE dataset = ? AND model = ?", [dataset, model]
            )


def record_drop(
    store: Store,
    dataset: str,
    drop: Drop,
    params_hash: str,
    requirement: str,
    run_id: str,
    *,
    first: bool = False,
) -> None:
    """Record a drop (replacing an earlier one of the same candidate); with `first`, a drop
    already recorded stays (processes deciding the same race: the first decision is the one)."""
    sql = KEEP_FIRST if first else UPSERT
    with store.transaction() as con:
        con.execute(
            sql,
            [dataset, drop.model, params_hash, drop.after_items, drop.reason, requirement, run_id],
        )


def dropped_models(store: Store, dataset: str) -> dict[str, Drop]:
    """The candidates adaptive evaluation dropped on `dataset`, by model name."""
    with store.connect(read_only=True) as con:
        return drops_in(con, dataset)


def drops_in(con: Connection, dataset: str) -> dict[str, Drop]:
    """`dropped_models` on a connection the caller holds."""
    rows = con.execute(
        "SELECT model, after_items, reason FROM adaptive_drops WHERE dataset = ?", [dataset]
    ).fetchall()
    return {str(m): Drop(str(m), int(n), str(r)) for m, n, r in rows}
