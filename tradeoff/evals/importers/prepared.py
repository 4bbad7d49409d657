"""What every format parses into: items and outcomes frames in the store's column names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tradeoff.evals.importers.table import Table

ITEM_COLUMNS = [
    "item_id",
    "task",
    "prompt",
    "messages",
    "reference",
    "grader",
    "split",
    "metadata",
]
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
    """A validated file: one row per item, one row per outcome, the blank scores skipped, and
    warnings about what was imported differently from how the file reads (one line each)."""

    items: pd.DataFrame
    outcomes: pd.DataFrame
    skipped_empty_scores: int = 0
    warnings: list[str] = field(default_factory=list)


def split_different_prompts(table: Table, items: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows that share an item id but not its prompt are different items: never merge them.

    `items` has one row per file row. The first prompt of an id (in file order) keeps the id;
    each other prompt becomes item `<id>~<first 8 hex digits of its SHA-256>`, so importing the
    same file again gives the same ids. Returns the items with those ids and one warning per
    renamed prompt, naming the line it starts on and the line of the id's first prompt.
    """
    columns = ["item_id", "prompt", "messages"]
    first_of_variant = ~items.duplicated(columns).to_numpy()  # the first row of each prompt
    later = items[first_of_variant]["item_id"].duplicated().to_numpy()
    if not later.any():
        return items, []
    ids = items["item_id"].tolist()
    prompts = list(zip(items["prompt"].tolist(), items["messages"].tolist(), strict=True))
    affected = set(items[first_of_variant]["item_id"][later])
    taken = set(ids)
    first_line: dict[str, int] = {}  # an id's first row's line
    renamed: dict[tuple[str, Any], str] = {}
    warnings = []
    new_ids = list(ids)
    for pos in map(int, np.flatnonzero(items["item_id"].isin(affected).to_numpy())):
        original, prompt = ids[pos], prompts[pos]
        if original not in first_line:
            first_line[original] = table.line_of(pos)
            renamed[(original, prompt)] = original
        if (original, prompt) not in renamed:
            digest = hashlib.sha256(json.dumps(prompt).encode()).hexdigest()[:8]
            new = f"{original}~{digest}"
            if new in taken:
                raise table.fail(
                    pos,
                    "item_id",
                    f"item {original!r} has a different prompt here than on line "
                    f"{first_line[original]}, and {new!r}, the id it would get, is taken; "
                    "give the items distinct ids",
                )
            renamed[(original, prompt)] = new
            warnings.append(
                f"{table.path}:{table.line_of(pos)}: item {original!r} has a different prompt "
                f"than on line {first_line[original]}; imported as a separate item {new!r}"
            )
        new_ids[pos] = renamed[(original, prompt)]
    return items.assign(item_id=pd.Series(new_ids, index=items.index, dtype=object)), warnings


def unique_items(table: Table, items: pd.DataFrame) -> pd.DataFrame:
    """One row per item_id; an item whose task or split differs between rows fails."""
    if "metadata" not in items.columns:  # only the `items` format carries it
        items = items.assign(metadata=pd.Series(None, index=items.index, dtype=object))
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
