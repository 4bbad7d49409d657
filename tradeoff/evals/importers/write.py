"""Writing a prepared file to the store: one transaction, bulk upserts, a `runs` row.

Items and outcomes are registered as DataFrames and upserted with one
`INSERT ... SELECT ... ON CONFLICT DO UPDATE` each, so re-importing a file updates rows in place
instead of duplicating them. Optional item fields that the file leaves blank keep what the store
already has (an `items` import's reference survives a later outcomes import).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tradeoff.evals.importers.prepared import Prepared
from tradeoff.evals.store import Store


@dataclass
class ImportSummary:
    """What one import did. `seconds` covers reading, checking and writing."""

    dataset: str
    path: str
    format: str
    run_id: str
    items: int
    items_inserted: int
    outcomes_inserted: int
    outcomes_updated: int
    outcomes_unchanged: int
    skipped_empty_scores: int
    models: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


UPSERT_ITEMS = """
INSERT INTO items (dataset, item_id, task, prompt, messages, reference, grader, split)
SELECT $dataset, item_id, task, prompt, CAST(messages AS JSON), reference, grader, split
FROM new_items
ON CONFLICT (dataset, item_id) DO UPDATE SET
    task = excluded.task,
    prompt = COALESCE(excluded.prompt, items.prompt),
    messages = COALESCE(excluded.messages, items.messages),
    reference = COALESCE(excluded.reference, items.reference),
    grader = COALESCE(excluded.grader, items.grader),
    split = COALESCE(excluded.split, items.split)
"""

# Re-importing an identical row changes nothing (not even run_id): imports are idempotent.
CHANGED = (
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

UPSERT_OUTCOMES = f"""
INSERT INTO outcomes (dataset, item_id, model, params_hash, sample, response, score,
    prompt_tokens, completion_tokens, cost_usd, latency_ms, ttft_ms, error, run_id)
SELECT $dataset, item_id, model, '', CAST(sample AS INTEGER), CAST(response AS VARCHAR),
    CAST(score AS DOUBLE PRECISION), CAST(prompt_tokens AS BIGINT),
    CAST(completion_tokens AS BIGINT), CAST(cost_usd AS DOUBLE PRECISION),
    CAST(latency_ms AS DOUBLE PRECISION), CAST(ttft_ms AS DOUBLE PRECISION), NULL, $run_id
FROM new_outcomes
ON CONFLICT (dataset, item_id, model, params_hash, sample) DO UPDATE SET
    response = excluded.response,
    score = excluded.score,
    prompt_tokens = excluded.prompt_tokens,
    completion_tokens = excluded.completion_tokens,
    cost_usd = excluded.cost_usd,
    latency_ms = excluded.latency_ms,
    ttft_ms = excluded.ttft_ms,
    error = NULL,
    run_id = excluded.run_id
WHERE {CHANGED}
"""

COUNT_EXISTING_ITEMS = """
SELECT count(*) FROM new_items n JOIN items i ON i.dataset = $dataset AND i.item_id = n.item_id
"""

COUNT_EXISTING_OUTCOMES = f"""
SELECT count(*), count(*) FILTER (WHERE {CHANGED}) FROM new_outcomes excluded JOIN outcomes
    ON outcomes.dataset = $dataset AND outcomes.item_id = excluded.item_id
    AND outcomes.model = excluded.model AND outcomes.params_hash = ''
    AND outcomes.sample = CAST(excluded.sample AS INTEGER)
"""


def write_prepared(
    store: Store,
    prepared: Prepared,
    *,
    dataset: str,
    path: Path,
    fmt: str,
    split: str | None,
    license: str | None = None,
    description: str | None = None,
    started: float,
) -> ImportSummary:
    """Upsert the dataset, items, models and outcomes and record the run, all or nothing."""
    run_id = f"import-{uuid.uuid4().hex[:12]}"
    models = sorted(prepared.outcomes["model"].unique().tolist())
    params = json.dumps({"format": fmt, "split": split})
    ids = {"dataset": dataset}
    with store.transaction() as con:
        con.register("new_items", prepared.items)
        con.register("new_outcomes", prepared.outcomes)
        existing_items = _count(con, COUNT_EXISTING_ITEMS, ids)
        existing_outcomes, changed_outcomes = _counts(con, COUNT_EXISTING_OUTCOMES, ids)
        con.execute(
            "INSERT INTO datasets (name, source, license, description) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET source = excluded.source, "
            "license = COALESCE(excluded.license, datasets.license), "
            "description = COALESCE(excluded.description, datasets.description), "
            "updated_at = excluded.updated_at",
            [dataset, str(path), license, description],
        )
        con.execute(UPSERT_ITEMS, ids)
        if models:
            # Known models keep their tier and prices; new names arrive with tier NULL.
            con.executemany(
                "INSERT INTO models (name, source) VALUES (?, 'import') ON CONFLICT DO NOTHING",
                [[m] for m in models],
            )
        con.execute(UPSERT_OUTCOMES, {**ids, "run_id": run_id})
        finished_at = datetime.now(UTC).replace(tzinfo=None)  # the store's naive UTC
        started_at = finished_at - timedelta(seconds=time.perf_counter() - started)
        con.execute(
            "INSERT INTO runs (run_id, kind, dataset, source, params, status, started_at, "
            "finished_at, n_outcomes) VALUES (?, 'import', ?, ?, ?, 'done', ?, ?, ?)",
            [run_id, dataset, str(path), params, started_at, finished_at, len(prepared.outcomes)],
        )
        con.unregister("new_items")
        con.unregister("new_outcomes")
    return ImportSummary(
        dataset=dataset,
        path=str(path),
        format=fmt,
        run_id=run_id,
        items=len(prepared.items),
        items_inserted=len(prepared.items) - existing_items,
        outcomes_inserted=len(prepared.outcomes) - existing_outcomes,
        outcomes_updated=changed_outcomes,
        outcomes_unchanged=existing_outcomes - changed_outcomes,
        skipped_empty_scores=prepared.skipped_empty_scores,
        models=models,
        seconds=round(time.perf_counter() - started, 3),
        warnings=prepared.warnings,
    )


def _count(con: Any, sql: str, params: dict[str, str]) -> int:
    return _counts(con, sql, params)[0]


def _counts(con: Any, sql: str, params: dict[str, str]) -> tuple[int, ...]:
    row = con.execute(sql, params).fetchone()
    return tuple(int(v) for v in row) if row else (0, 0)
