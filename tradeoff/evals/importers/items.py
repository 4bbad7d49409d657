"""The `items` format: eval items without outcomes, one JSON object a line.

Fields: `id, task, prompt` (or `messages`), optional `reference, grader, split`. An id that
appears twice fails, unless the prompts differ: then both are kept, as different items.
"""

from __future__ import annotations

import pandas as pd

from tradeoff.evals.importers.long import item_columns
from tradeoff.evals.importers.prepared import (
    OUTCOME_COLUMNS,
    Prepared,
    split_different_prompts,
    unique_items,
)
from tradeoff.evals.importers.table import Table


def prepare(table: Table, split: str | None) -> Prepared:
    table.frame = table.frame.rename(columns={"id": "item_id"})
    if "item_id" not in table.frame.columns:
        table.require("id")
    table.require("task")
    items, warnings = split_different_prompts(table, item_columns(table, split))
    duplicated = items["item_id"].duplicated().to_numpy()
    if duplicated.any():
        pos = int(duplicated.nonzero()[0][0])
        raise table.fail(pos, "id", f"item {items['item_id'].iloc[pos]!r} appears twice")
    return Prepared(
        items=unique_items(table, items),
        outcomes=pd.DataFrame(columns=OUTCOME_COLUMNS),
        warnings=warnings,
    )
