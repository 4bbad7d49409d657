"""Writing a prepared file to the store: one transaction, bulk upserts, a `runs` row.

Items and outcomes are upserted in bulk (`evals.store.outcomes.import_rows`), so re-importing a
file updates rows in place instead of duplicating them. Optional item fields that the file
leaves blank keep what the store already has (an `items` import's reference survives a later
outcomes import).
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
from tradeoff.evals.store.outcomes import import_rows, record_dataset, record_models


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
    with store.transaction() as con:
        record_dataset(con, dataset, str(path), description=description, license=license)
        counts = import_rows(con, dataset, prepared.items, prepared.outcomes, run_id)
        # Known models keep their tier and prices; new names arrive with tier NULL.
        record_models(con, models, "import")
        finished_at = datetime.now(UTC).replace(tzinfo=None)  # the store's naive UTC
        started_at = finished_at - timedelta(seconds=time.perf_counter() - started)
        con.execute(
            "INSERT INTO runs (run_id, kind, dataset, source, params, status, started_at, "
            "finished_at, n_outcomes) VALUES (?, 'import', ?, ?, ?, 'done', ?, ?, ?)",
            [run_id, dataset, str(path), params, started_at, finished_at, len(prepared.outcomes)],
        )
    return ImportSummary(
        dataset=dataset,
        path=str(path),
        format=fmt,
        run_id=run_id,
        items=len(prepared.items),
        items_inserted=len(prepared.items) - counts.existing_items,
        outcomes_inserted=len(prepared.outcomes) - counts.existing_outcomes,
        outcomes_updated=counts.changed_outcomes,
        outcomes_unchanged=counts.existing_outcomes - counts.changed_outcomes,
        skipped_empty_scores=prepared.skipped_empty_scores,
        models=models,
        seconds=round(time.perf_counter() - started, 3),
        warnings=prepared.warnings,
    )
