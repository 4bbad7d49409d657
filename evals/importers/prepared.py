"""What every format parses into: items and outcomes frames in the store's column names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evals.importers.table import Table

ITEM_COLUMNS = ["item_id", "task", "prompt", "messages", "reference", "grader", "split"]
OUTCOME_COLUMNS = [
    "item_id",
    "model",
    "sample",
    "response",
    "score",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
]


@dataclass
class Prepared:
    """A validated file: one row per item, one row per outcome, and the blank scores skipped."""

    items: pd.DataFrame
    outcomes: pd.DataFrame
    skipped_empty_scores: int = 0


def unique_items(table: Table, items: pd.DataFrame) -> pd.DataFrame:
    """One row per item_id; an item whose task or split differs between rows fails."""
    for column in ("task", "split"):
        values = items[column].fillna("")
        first = values.groupby(items["item_id"], sort=False).transform("first")
        differs = (values != first).to_numpy()
        if differs.any():
            pos = int(np.flatnonzero(differs)[0])
            raise table.fail(
                pos,
                column,
                f"item {items['item_id'].iloc[pos]!r} has {column} {values.iloc[pos]!r} here "
                f"but {first.iloc[pos]!r} on an earlier row",
            )
    return items.drop_duplicates("item_id", keep="first").reset_index(drop=True)[ITEM_COLUMNS]


def check_unique_outcomes(table: Table, outcomes: pd.DataFrame, positions: np.ndarray) -> None:
    """Two rows for the same item, model and sample would silently overwrite each other."""
    dup = outcomes.duplicated(["item_id", "model", "sample"], keep="first").to_numpy()
    if dup.any():
        at = int(np.flatnonzero(dup)[0])
        row = outcomes.iloc[at]
        raise table.fail(
            int(positions[at]),
            "model",
            f"item {row['item_id']!r}, model {row['model']!r}, sample {int(row['sample'])} "
            "appears twice; keep one row or give each a different sample number",
        )
