"""Reliability: how consistently a model answers the same item across repeated samples.

Definition (DESIGN.md). For each item, take the non-error samples' outcomes (an outcome is the
score, rounded to 6 decimals: pass/fail for binary graders). The item's *agreement* is the
share of those samples equal to the item's most frequent outcome. Then

    consistency = mean over items of agreement  x  (1 - error rate)

where the error rate is errored samples / all samples (over every item). Items whose samples
all errored contribute no agreement (they count through the error rate). With one sample per
item agreement is 1, so consistency reduces to 1 - error rate; ask for `--repeats 3` or more.
Range [0, 1]; 1 means every sample agrees and none failed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

Score = float | None  # None: the sample errored


def item_agreement(scores: Sequence[Score]) -> float | None:
    """Share of an item's non-error samples that equal its majority outcome (None if all errored)."""
    outcomes = [round(float(s), 6) for s in scores if s is not None and s == s]
    if not outcomes:
        return None
    return Counter(outcomes).most_common(1)[0][1] / len(outcomes)


def reliability(scores_by_item: Mapping[str, Sequence[Score]] | Iterable[Sequence[Score]]) -> float:
    """Consistency x (1 - error rate) from each item's sample scores (None or NaN = error)."""
    groups = (
        list(scores_by_item.values())
        if isinstance(scores_by_item, Mapping)
        else list(scores_by_item)
    )
    total = sum(len(g) for g in groups)
    if total == 0:
        return 0.0
    errors = sum(1 for g in groups for s in g if s is None or s != s)
    agreements = [a for a in (item_agreement(g) for g in groups) if a is not None]
    if not agreements:
        return 0.0
    return sum(agreements) / len(agreements) * (1 - errors / total)


def reliability_frame(outcomes: pd.DataFrame, by: Sequence[str] = ("model",)) -> dict[Any, float]:
    """`reliability` per group of an outcomes frame (columns item_id, score, error, *by).

    A row is an error when `error` is set; its score is ignored. Keys are group values
    (tuples when `by` has several columns).
    """
    out: dict[Any, float] = {}
    keys = list(by)
    for key, group in outcomes.groupby(keys[0] if len(keys) == 1 else keys, sort=True):
        per_item: dict[str, list[Score]] = {}
        for item_id, score, error in zip(
            group["item_id"], group["score"], group["error"], strict=True
        ):
            ok = error is None or (isinstance(error, float) and error != error)
            value = None if not ok or score is None or pd.isna(score) else float(score)
            per_item.setdefault(str(item_id), []).append(value)
        out[key] = reliability(per_item)
    return out
