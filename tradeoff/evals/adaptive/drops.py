"""The store's record of candidates an adaptive evaluation stopped measuring.

Items a dropped candidate was not run on have no outcome row: they are *not measured*, never
failures. `tradeoff fit` reads this table (`dropped_models`) to leave such a candidate out
rather than shrink every other model's data to the items it was measured on.
"""

from __future__ import annotations

from tradeoff.evals.adaptive.race import Drop
from tradeoff.evals.store import Store

UPSERT = """
INSERT INTO adaptive_drops (dataset, model, params_hash, after_items, reason, requirement, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dataset, model, params_hash) DO UPDATE SET
    after_items = excluded.after_items, reason = excluded.reason,
    requirement = excluded.requirement, run_id = excluded.run_id
"""


def clear_drops(store: Store, dataset: str, models: list[str]) -> None:
    """Forget earlier drops of these candidates (a new race decides them again)."""
    with store.transaction() as con:
        for model in models:
            con.execute(
                "DELETE FROM adaptive_drops WHERE dataset = ? AND model = ?", [dataset, model]
            )


def record_drop(
    store: Store, dataset: str, drop: Drop, params_hash: str, requirement: str, run_id: str
) -> None:
    with store.transaction() as con:
        con.execute(
            UPSERT,
            [dataset, drop.model, params_hash, drop.after_items, drop.reason, requirement, run_id],
        )


def dropped_models(store: Store, dataset: str) -> dict[str, Drop]:
    """The candidates adaptive evaluation dropped on `dataset`, by model name."""
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT model, after_items, reason FROM adaptive_drops WHERE dataset = ?", [dataset]
        ).fetchall()
    return {str(m): Drop(str(m), int(n), str(r)) for m, n, r in rows}
