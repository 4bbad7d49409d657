"""The `routerbench` format: RouterBench's wide CSV, one row per prompt.

Columns: `sample_id, prompt, eval_name`, then per model a score column named after the model,
`<model>|total_cost` and optionally `<model>|model_response`. `oracle_model_to_route_to` and
other `|`-suffixed columns are ignored. `eval_name` becomes the task. A `sample_id` that
appears again with a different prompt is kept as a different item (with a warning).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeoff.evals.errors import ImportFormatError
from tradeoff.evals.importers import cells
from tradeoff.evals.importers.prepared import (
    OUTCOME_COLUMNS,
    Prepared,
    check_unique_outcomes,
    split_different_prompts,
    unique_items,
)
from tradeoff.evals.importers.table import Table

FIXED = ("sample_id", "prompt", "eval_name")
IGNORED = ("oracle_model_to_route_to",)


def model_columns(table: Table) -> list[str]:
    models = [c for c in table.frame.columns if c not in FIXED + IGNORED and "|" not in c]
    models = [c for c in models if not c.startswith("Unnamed:")]  # a saved pandas index
    if not models:
        raise ImportFormatError(
            str(table.path), 1, None, "no model score columns; expected one column per model"
        )
    for model in models:
        table.require(f"{model}|total_cost")
    return models


def prepare(table: Table, split: str | None) -> Prepared:
    table.require(*FIXED)
    frame = table.frame
    models = model_columns(table)
    items = pd.DataFrame(
        {
            "item_id": cells.text(table, frame["sample_id"], "sample_id", required=True),
            "task": cells.text(table, frame["eval_name"], "eval_name", required=True),
            "prompt": cells.text(table, frame["prompt"], "prompt", required=True),
            "messages": None,
            "reference": None,
            "grader": None,
            "split": split,
        }
    )
    items, warnings = split_different_prompts(table, items)
    item_id = items["item_id"]
    per_model: list[pd.DataFrame] = []
    positions: list[np.ndarray] = []
    skipped = 0
    for model in models:
        score = cells.score(table, frame[model], model)
        cost_column = f"{model}|total_cost"
        cost = cells.number(table, frame[cost_column], cost_column, low=0)
        scored = score.notna()
        missing_cost = (scored & cost.isna()).to_numpy()
        if missing_cost.any():
            raise table.fail(
                int(np.flatnonzero(missing_cost)[0]), cost_column, "is empty but the score is not"
            )
        response_column = f"{model}|model_response"
        response = (
            cells.text(table, frame[response_column], response_column, required=False)
            if response_column in frame.columns
            else None
        )
        keep = scored.to_numpy()
        skipped += int((~keep).sum())
        block = pd.DataFrame(
            {
                "item_id": item_id,
                "model": model,
                "sample": 0,
                "response": response,
                "score": score,
                "cost_usd": cost,
                "prompt_tokens": np.nan,
                "completion_tokens": np.nan,
                "latency_ms": np.nan,
                "ttft_ms": np.nan,
            }
        )[keep]
        per_model.append(block)
        positions.append(np.flatnonzero(keep))
    outcomes = pd.concat(per_model, ignore_index=True)[OUTCOME_COLUMNS]
    check_unique_outcomes(table, outcomes, np.concatenate(positions))
    return Prepared(
        items=unique_items(table, items),
        outcomes=outcomes,
        skipped_empty_scores=skipped,
        warnings=warnings,
    )
