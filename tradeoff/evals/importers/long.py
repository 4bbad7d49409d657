"""The `long` format: one row per outcome, in CSV, JSONL or Parquet.

Columns: `item_id, task, prompt` (or `messages`), `model, score, cost_usd`; optional
`latency_ms, ttft_ms, response, prompt_tokens, completion_tokens, sample, reference, grader,
split`. A blank score means that model has no outcome for the item (skipped and counted).
Rows of one `item_id` with different prompts are kept as different items (with a warning).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeoff.evals.importers import cells
from tradeoff.evals.importers.prepared import (
    OUTCOME_COLUMNS,
    Prepared,
    check_unique_outcomes,
    split_different_prompts,
    unique_items,
)
from tradeoff.evals.importers.table import Table

REQUIRED = ("item_id", "task", "model", "score", "cost_usd")
OPTIONAL_COUNTS = ("prompt_tokens", "completion_tokens")
OPTIONAL_TIMES = ("latency_ms", "ttft_ms")


def prepare(table: Table, split: str | None) -> Prepared:
    table.require(*REQUIRED)
    frame = table.frame
    items, warnings = split_different_prompts(table, item_columns(table, split))
    score = cells.score(table, frame["score"], "score")
    cost = cells.number(table, frame["cost_usd"], "cost_usd", low=0)
    scored = score.notna()
    if (scored & cost.isna()).any():
        pos = int(np.flatnonzero((scored & cost.isna()).to_numpy())[0])
        raise table.fail(pos, "cost_usd", "is empty; every row with a score needs a cost")
    outcomes = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "model": cells.text(table, frame["model"], "model", required=True),
            "sample": _optional_number(table, "sample", integer=True).fillna(0).astype("int64"),
            "response": _optional_text(table, "response"),
            "score": score,
            "cost_usd": cost,
        }
    )
    for column in OPTIONAL_COUNTS:
        outcomes[column] = _optional_number(table, column, integer=True)
    for column in OPTIONAL_TIMES:
        outcomes[column] = _optional_number(table, column)
    keep = scored.to_numpy()
    outcomes = outcomes[keep].reset_index(drop=True)[OUTCOME_COLUMNS]
    check_unique_outcomes(table, outcomes, np.flatnonzero(keep))
    return Prepared(
        items=unique_items(table, items),
        outcomes=outcomes,
        skipped_empty_scores=int((~scored).sum()),
        warnings=warnings,
    )


def item_columns(table: Table, split: str | None) -> pd.DataFrame:
    """The item fields of every row (before de-duplication); shared with the `items` format."""
    frame = table.frame
    if "prompt" not in frame.columns and "messages" not in frame.columns:
        table.require("prompt")
    prompt = _optional_text(table, "prompt")
    messages = (
        cells.messages(table, frame["messages"], "messages")
        if "messages" in frame.columns
        else pd.Series(None, index=frame.index, dtype=object)
    )
    neither = (prompt.isna() & messages.isna()).to_numpy()
    if neither.any():
        raise table.fail(
            int(np.flatnonzero(neither)[0]), "prompt", "is empty; give a prompt or messages"
        )
    grader = _optional_text(table, "grader")
    check_grader_names(table, grader)
    row_split = _optional_text(table, "split")
    if split is not None:
        row_split = row_split.where(row_split.notna(), split)
    return pd.DataFrame(
        {
            "item_id": cells.text(table, frame["item_id"], "item_id", required=True),
            "task": cells.text(table, frame["task"], "task", required=True),
            "prompt": prompt,
            "messages": messages,
            "reference": _optional_text(table, "reference"),
            "grader": grader,
            "split": row_split,
        }
    )


def check_grader_names(table: Table, grader: pd.Series) -> None:
    """A grader name must be built in or `module:function`: a typo fails the import here,
    not every outcome later. (A custom grader's module is imported when an eval runs.)"""
    names = grader.dropna().unique().tolist()
    if not names:
        return
    from tradeoff.evals.graders.base import is_grader_name, unknown_grader

    for name in names:
        if not is_grader_name(name):
            pos = int(np.flatnonzero((grader == name).to_numpy())[0])
            raise table.fail(pos, "grader", unknown_grader(name))


def _optional_text(table: Table, column: str) -> pd.Series:
    if column not in table.frame.columns:
        return pd.Series(None, index=table.frame.index, dtype=object)
    return cells.text(table, table.frame[column], column, required=False)


def _optional_number(table: Table, column: str, *, integer: bool = False) -> pd.Series:
    if column not in table.frame.columns:
        return pd.Series(np.nan, index=table.frame.index, dtype="float64")
    return cells.number(table, table.frame[column], column, low=0, integer=integer)
