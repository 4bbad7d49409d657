"""The rounds of refine candidates' outcomes (`outcome_rounds`): the one module that writes them.

A refine variant (evals/refine.py) answers in rounds; its outcome is the last round's answer with
every round's tokens and cost summed. Each round is kept here under its outcome's key plus
`round` (1, 2, ...): the model `called` (the variant, or the model it escalated to for an
escalated last round), whether the check `passed`, its tokens, cost, latency and error.

Rounds are written in the transaction that writes their outcomes, and only for outcomes that
write stored (the outcome's `run_id` is the rounds'): an outcome already answered keeps its
rounds, a recorded error answered again gets the new ones in place of the old.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from tradeoff.evals.store.base import Connection

__all__ = ["ROUND_SCHEMA", "delete_rounds", "insert_rounds", "round_table"]

ROUND_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("item_id", pa.string()),
        ("model", pa.string()),
        ("params_hash", pa.string()),
        ("sample", pa.int32()),
        ("round", pa.int32()),
        ("called", pa.string()),
        ("passed", pa.bool_()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("latency_ms", pa.float64()),
        ("error", pa.string()),
        ("run_id", pa.string()),
    ]
)
ROUND_COLUMNS = tuple(ROUND_SCHEMA.names)
_KEY = ("dataset", "item_id", "model", "params_hash", "sample")


def round_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Round rows (dicts keyed by `ROUND_SCHEMA`'s names; a missing key is NULL)."""
    return pa.Table.from_pylist(list(rows), schema=ROUND_SCHEMA)


def _same(left: str, right: str, keys: Iterable[str] = _KEY) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


def insert_rounds(con: Connection, rows: pa.Table) -> None:
    """Store `rows` (`round_table`) of the outcomes stored under their run_id, in place of any
    rounds those outcomes had (call after writing the outcomes, in the same transaction)."""
    if rows.num_rows == 0:
        return
    landed = f"JOIN outcomes o ON {_same('o', 'n')} AND o.run_id = n.run_id"
    con.register("round_rows", rows)
    try:
        con.execute(
            f"DELETE FROM outcome_rounds WHERE EXISTS (SELECT 1 FROM round_rows n {landed} "
            f"WHERE {_same('n', 'outcome_rounds')})"
        )
        columns = ", ".join(ROUND_COLUMNS)
        picked = ", ".join(f"n.{c}" for c in ROUND_COLUMNS)
        con.execute(
            f"INSERT INTO outcome_rounds ({columns}) SELECT {picked} FROM round_rows n {landed}"
        )
    finally:
        con.unregister("round_rows")


def delete_rounds(con: Connection, dataset: str) -> None:
    """Delete a dataset's rounds (with its outcomes, `outcomes.delete_rows`)."""
    con.execute("DELETE FROM outcome_rounds WHERE dataset = ?", [dataset])
