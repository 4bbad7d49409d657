"""The `items` format: eval items without outcomes, one JSON object a line.

Fields: `id, task, prompt` (or `messages`), optional `reference, grader, split, metadata`. An id
that appears twice fails, unless the prompts differ: then both are kept, as different items.
Any other field is an error naming it (never silently dropped).

`metadata` is an object: grader options (`tolerance`, `schema`, `tests`, ...) and the request
settings sent with every eval call of the item (`evals.request_settings`): `response_format`,
`tools`, `tool_choice` and `params` (other request fields, e.g. `max_tokens`).
"""

from __future__ import annotations

import json

import pandas as pd

from tradeoff.evals.importers import cells
from tradeoff.evals.importers.long import item_columns
from tradeoff.evals.importers.prepared import (
    OUTCOME_COLUMNS,
    Prepared,
    split_different_prompts,
    unique_items,
)
from tradeoff.evals.importers.table import Table
from tradeoff.evals.request_settings import settings_problem

FIELDS = ("id", "item_id", "task", "prompt", "messages", "reference", "grader", "split", "metadata")


def prepare(table: Table, split: str | None) -> Prepared:
    unknown = [c for c in table.frame.columns if c not in FIELDS]
    if unknown:
        present = table.frame[unknown[0]].notna().to_numpy()
        raise table.fail(
            int(present.nonzero()[0][0]) if present.any() else 0,
            str(unknown[0]),
            f"unknown field {unknown[0]!r}; an item has {', '.join(FIELDS[:1] + FIELDS[2:])} "
            "(request settings go under metadata)",
        )
    table.frame = table.frame.rename(columns={"id": "item_id"})
    if "item_id" not in table.frame.columns:
        table.require("id")
    table.require("task")
    columns = item_columns(table, split)
    if "metadata" in table.frame.columns:
        columns["metadata"] = cells.json_object(table, table.frame["metadata"], "metadata")
        for pos, text in enumerate(columns["metadata"].tolist()):
            problem = settings_problem(json.loads(text)) if text else None
            if problem:
                raise table.fail(pos, "metadata", problem)
    items, warnings = split_different_prompts(table, columns)
    duplicated = items["item_id"].duplicated().to_numpy()
    if duplicated.any():
        pos = int(duplicated.nonzero()[0][0])
        raise table.fail(pos, "id", f"item {items['item_id'].iloc[pos]!r} appears twice")
    return Prepared(
        items=unique_items(table, items),
        outcomes=pd.DataFrame(columns=OUTCOME_COLUMNS),
        warnings=warnings,
    )
