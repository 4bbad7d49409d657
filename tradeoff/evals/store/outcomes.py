"""Items and outcomes, and the datasets and model names they belong to: the one module that
writes these tables, and the reads other packages need. Everyone else calls it.

Writes take a connection inside the caller's transaction (`store.transaction()`), so a caller
can write its own tables in the same transaction (an eval's `runs` row, the loop's pairs).

Rows travel as Arrow tables in `SCHEMA` (`outcome_table`) and `ITEM_SCHEMA` (`item_table`):
Arrow, not pandas, because a pandas float column turns None into NaN, and NaN is not NULL.
The primary key (dataset, item_id, model, params_hash, sample) decides what a second write of
the same outcome does: `insert_outcomes(..., on_conflict=...)` names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from tradeoff.evals.store.base import Connection
from tradeoff.evals.store.rounds import delete_rounds

__all__ = [
    "COLUMNS",
    "ITEM_SCHEMA",
    "SCHEMA",
    "ImportCounts",
    "copy_rows",
    "count_items",
    "dataset_items",
    "dataset_outcomes",
    "delete_rows",
    "import_rows",
    "insert_items",
    "insert_outcomes",
    "item_table",
    "model_counts",
    "outcome_table",
    "record_dataset",
    "record_models",
    "record_score",
]

# One outcome row: every column of `outcomes` but created_at (the store's clock sets it).
SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("item_id", pa.string()),
        ("model", pa.string()),
        ("params_hash", pa.string()),
        ("sample", pa.int32()),
        ("response", pa.string()),
        ("score", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("latency_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("error", pa.string()),
        ("run_id", pa.string()),
        ("rounds", pa.int32()),
        ("escalated", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names)
_KEY = "(dataset, item_id, model, params_hash, sample)"

# One item row; `messages` and `metadata` as JSON text.
ITEM_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("item_id", pa.string()),
        ("task", pa.string()),
        ("prompt", pa.string()),
        ("messages", pa.string()),
        ("reference", pa.string()),
        ("grader", pa.string()),
        ("split", pa.string()),
        ("metadata", pa.string()),
    ]
)
ITEM_COLUMNS = tuple(ITEM_SCHEMA.names)
_JSON_ITEM_COLUMNS = {"messages", "metadata"}


def outcome_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Outcome rows (dicts keyed by `COLUMNS`; a missing key is NULL) as one Arrow table."""
    return pa.Table.from_pylist(list(rows), schema=SCHEMA)


def item_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Item rows (dicts keyed by `ITEM_SCHEMA`'s names; a missing key is NULL)."""
    return pa.Table.from_pylist(list(rows), schema=ITEM_SCHEMA)


# --- writes -------------------------------------------------------------------------------------

_ON_CONFLICT = {
    # A re-insert is a no-op, except that a recorded error is replaced by a later answer.
    "replace_errors": "DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[5:])
    + " WHERE outcomes.error IS NOT NULL",
    # What is there stays (traffic: feedback recorded first wins over a grader's score).
    "keep": "DO NOTHING",
}


def insert_outcomes(
    con: Connection, rows: pa.Table, *, on_conflict: Literal["replace_errors", "keep"]
) -> None:
    """Insert `rows` (`outcome_table`); an outcome already stored is treated as `on_conflict`
    says."""
    con.register("outcome_rows", rows)
    try:
        con.execute(
            f"INSERT INTO outcomes ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} "
            f"FROM outcome_rows ON CONFLICT {_KEY} {_ON_CONFLICT[on_conflict]}"
        )
    finally:
        con.unregister("outcome_rows")


def record_score(
    con: Connection,
    dataset: str,
    item_id: str,
    model: str,
    score: float,
    *,
    cost_usd: float | None,
    run_id: str,
) -> None:
    """Set one answer's score (sample 0, no params hash), inserting the outcome if needed; a
    stored outcome keeps everything else (a person's verdict on a graded answer)."""
    con.execute(
        "INSERT INTO outcomes (dataset, item_id, model, params_hash, sample, score, cost_usd, "
        f"run_id) VALUES (?, ?, ?, '', 0, ?, ?, ?) ON CONFLICT {_KEY} DO UPDATE SET "
        "score = excluded.score, run_id = excluded.run_id",
        [dataset, item_id, model, score, cost_usd, run_id],
    )


def insert_items(con: Connection, rows: pa.Table) -> None:
    """Insert `rows` (`item_table`); an item already stored stays as it is."""
    values = ", ".join(f"CAST({c} AS JSON)" if c in _JSON_ITEM_COLUMNS else c for c in ITEM_COLUMNS)
    con.register("item_rows", rows)
    try:
        con.execute(
            f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) SELECT {values} FROM item_rows "
            "ON CONFLICT (dataset, item_id) DO NOTHING"
        )
    finally:
        con.unregister("item_rows")


def record_dataset(
    con: Connection,
    name: str,
    source: str,
    *,
    description: str | None = None,
    license: str | None = None,
    keep: bool = False,
) -> None:
    """Create the dataset row, or update its source (and its license and description where
    given); with `keep`, an existing row stays as it is."""
    conflict = (
        "DO NOTHING"
        if keep
        else "DO UPDATE SET source = excluded.source, "
        "license = COALESCE(excluded.license, datasets.license), "
        "description = COALESCE(excluded.description, datasets.description), "
        "updated_at = excluded.updated_at"
    )
    con.execute(
        "INSERT INTO datasets (name, source, license, description) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT (name) {conflict}",
        [name, source, license, description],
    )


def record_models(con: Connection, names: Iterable[str], source: str) -> None:
    """Add model names the store does not know yet (tier and prices NULL); known models keep
    theirs."""
    rows = [[name, source] for name in sorted(set(names))]
    if rows:
        con.executemany(
            "INSERT INTO models (name, source) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
        )


def delete_rows(con: Connection, dataset: str) -> None:
    """Delete a dataset's items and outcomes with their rounds (its `datasets` row stays)."""
    delete_rounds(con, dataset)
    con.execute("DELETE FROM outcomes WHERE dataset = ?", [dataset])
    con.execute("DELETE FROM items WHERE dataset = ?", [dataset])


# A typed placeholder: PostgreSQL cannot infer the type of one in a select list.
_NAME = "CAST(? AS VARCHAR)"


def copy_rows(
    con: Connection,
    target: str,
    source: str,
    *,
    models: list[str],
    item_ids: list[str] | None = None,
) -> None:
    """Copy dataset `source`'s items (those in `item_ids`, or all) and their outcomes of
    `models` into dataset `target`; rows `target` already has stay as they are."""
    con.register("copy_models", pa.table({"model": pa.array(models, pa.string())}))
    if item_ids is not None:
        con.register("copy_ids", pa.table({"item_id": pa.array(item_ids, pa.string())}))
    only = "" if item_ids is None else " AND item_id IN (SELECT item_id FROM copy_ids)"
    items = ", ".join(ITEM_COLUMNS[1:])
    outcomes = ", ".join(COLUMNS[1:])
    try:
        con.execute(
            f"INSERT INTO items (dataset, {items}) SELECT {_NAME}, {items} FROM items "
            f"WHERE dataset = ?{only} ON CONFLICT (dataset, item_id) DO NOTHING",
            [target, source],
        )
        con.execute(
            f"INSERT INTO outcomes (dataset, {outcomes}) SELECT {_NAME}, {outcomes} "
            f"FROM outcomes WHERE dataset = ?{only} "
            f"AND model IN (SELECT model FROM copy_models) ON CONFLICT {_KEY} DO NOTHING",
            [target, source],
        )
    finally:
        con.unregister("copy_models")
        if item_ids is not None:
            con.unregister("copy_ids")


# --- imports ------------------------------------------------------------------------------------

_UPSERT_ITEMS = """
INSERT INTO items (dataset, item_id, task, prompt, messages, reference, grader, split, metadata)
SELECT $dataset, item_id, task, prompt, CAST(messages AS JSON), reference, grader, split,
    CAST(metadata AS JSON)
FROM new_items
ON CONFLICT (dataset, item_id) DO UPDATE SET
    task = excluded.task,
    prompt = COALESCE(excluded.prompt, items.prompt),
    messages = COALESCE(excluded.messages, items.messages),
    reference = COALESCE(excluded.reference, items.reference),
    grader = COALESCE(excluded.grader, items.grader),
    split = COALESCE(excluded.split, items.split),
    metadata = COALESCE(excluded.metadata, items.metadata)
"""

# Re-importing an identical row changes nothing (not even run_id): imports are idempotent.
_CHANGED = (
    " OR ".join(
        f"outcomes.{c} IS DISTINCT FROM CAST(excluded.{c} AS {t})"
        for c, t in [
            ("response", "VARCHAR"),
            ("score", "DOUBLE PRECISION"),
            ("prompt_tokens", "BIGINT"),
            ("completion_tokens", "BIGINT"),
            ("cost_usd", "DOUBLE PRECISION"),
            ("latency_ms", "DOUBLE PRECISION"),
            ("ttft_ms", "DOUBLE PRECISION"),
        ]
    )
    + " OR outcomes.error IS NOT NULL"
)

_UPSERT_OUTCOMES = f"""
INSERT INTO outcomes (dataset, item_id, model, params_hash, sample, response, score,
    prompt_tokens, completion_tokens, cost_usd, latency_ms, ttft_ms, error, run_id)
SELECT $dataset, item_id, model, '', CAST(sample AS INTEGER), CAST(response AS VARCHAR),
    CAST(score AS DOUBLE PRECISION), CAST(prompt_tokens AS BIGINT),
    CAST(completion_tokens AS BIGINT), CAST(cost_usd AS DOUBLE PRECISION),
    CAST(latency_ms AS DOUBLE PRECISION), CAST(ttft_ms AS DOUBLE PRECISION), NULL, $run_id
FROM new_outcomes
ON CONFLICT {_KEY} DO UPDATE SET
    response = excluded.response,
    score = excluded.score,
    prompt_tokens = excluded.prompt_tokens,
    completion_tokens = excluded.completion_tokens,
    cost_usd = excluded.cost_usd,
    latency_ms = excluded.latency_ms,
    ttft_ms = excluded.ttft_ms,
    error = NULL,
    run_id = excluded.run_id
WHERE {_CHANGED}
"""

_COUNT_EXISTING_ITEMS = """
SELECT count(*) FROM new_items n JOIN items i ON i.dataset = $dataset AND i.item_id = n.item_id
"""

_COUNT_EXISTING_OUTCOMES = f"""
SELECT count(*), count(*) FILTER (WHERE {_CHANGED}) FROM new_outcomes excluded JOIN outcomes
    ON outcomes.dataset = $dataset AND outcomes.item_id = excluded.item_id
    AND outcomes.model = excluded.model AND outcomes.params_hash = ''
    AND outcomes.sample = CAST(excluded.sample AS INTEGER)
"""


@dataclass(frozen=True)
class ImportCounts:
    """Of an import's rows, those the store had before it (and, of outcomes, the changed)."""

    existing_items: int
    existing_outcomes: int
    changed_outcomes: int


def import_rows(
    con: Connection, dataset: str, items: Any, outcomes: Any, run_id: str
) -> ImportCounts:
    """Upsert an imported file's items and outcomes (frames in the store's column names, without
    `dataset`): item fields the file leaves blank keep what the store has; an outcome is
    rewritten only if it changed (or was an error), under `run_id`."""
    ids = {"dataset": dataset}
    con.register("new_items", items)
    con.register("new_outcomes", outcomes)
    try:
        row = con.execute(_COUNT_EXISTING_ITEMS, ids).fetchone()
        existing_items = int(row[0]) if row else 0
        row = con.execute(_COUNT_EXISTING_OUTCOMES, ids).fetchone()
        existing, changed = (int(row[0]), int(row[1])) if row else (0, 0)
        con.execute(_UPSERT_ITEMS, ids)
        con.execute(_UPSERT_OUTCOMES, {**ids, "run_id": run_id})
    finally:
        con.unregister("new_items")
        con.unregister("new_outcomes")
    return ImportCounts(existing_items, existing, changed)


# --- reads --------------------------------------------------------------------------------------


def model_counts(con: Connection) -> dict[str, tuple[int, int, float | None]]:
    """Per model with outcomes (known to the `models` table or not): (outcomes, datasets, mean
    score)."""
    rows = con.execute(
        "SELECT model, count(*), count(DISTINCT dataset), avg(score) FROM outcomes GROUP BY model"
    ).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), None if r[3] is None else float(r[3])) for r in rows}


def count_items(con: Connection, dataset: str) -> int:
    # fetchall, not fetchone: DuckDB refuses `register` on a connection with a result unread.
    rows = con.execute("SELECT count(*) FROM items WHERE dataset = ?", [dataset]).fetchall()
    return int(rows[0][0])


def dataset_items(con: Connection, dataset: str) -> list[tuple[Any, ...]]:
    """A dataset's items in item_id order: (item_id, task, prompt, messages, split or '',
    metadata)."""
    return con.execute(
        "SELECT item_id, task, prompt, messages, coalesce(split, ''), metadata FROM items "
        "WHERE dataset = ? ORDER BY item_id",
        [dataset],
    ).fetchall()


def dataset_outcomes(
    con: Connection, dataset: str, *, with_responses: bool = False
) -> list[tuple[Any, ...]]:
    """A dataset's outcomes, each model's under its most used params hash: (item_id, model,
    sample, score, cost_usd, latency_ms, errored, prompt_tokens, completion_tokens, the model's
    input and output cost per token, response or None)."""
    response = "o.response" if with_responses else "NULL"
    return con.execute(
        f"""
        WITH ranked AS (
            SELECT model, params_hash, count(*) AS n,
                   row_number() OVER (PARTITION BY model ORDER BY count(*) DESC,
                                      params_hash) AS r
            FROM outcomes WHERE dataset = ? GROUP BY model, params_hash
        )
        SELECT o.item_id, o.model, o.sample, o.score, o.cost_usd, o.latency_ms,
               o.error IS NOT NULL AS errored, o.prompt_tokens, o.completion_tokens,
               m.input_cost_per_token, m.output_cost_per_token, {response}
        FROM outcomes o
        JOIN ranked k ON k.model = o.model AND k.params_hash = o.params_hash AND k.r = 1
        LEFT JOIN models m ON m.name = o.model
        WHERE o.dataset = ?
        """,
        [dataset, dataset],
    ).fetchall()
