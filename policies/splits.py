"""Train / validation / test splits of a dataset's items: named splits or a seeded hash.

The hash split is deterministic: an item's side depends only on its id and the seed, so adding
items to a dataset never moves the old ones between train and test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from policies.errors import DataError


@dataclass(frozen=True)
class Splits:
    """Index arrays into an `Outcomes`: fit (train minus validation), validation, test."""

    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_name: str

    @property
    def train(self) -> np.ndarray:
        return np.sort(np.concatenate([self.fit, self.validation]))


def unit_hash(item_ids: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) per item id, fixed by (seed, salt)."""
    out = np.empty(len(item_ids))
    for i, item_id in enumerate(item_ids):
        digest = hashlib.blake2b(f"{seed}:{salt}:{item_id}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big") / 2.0**64
    return out


def make_splits(
    item_ids: np.ndarray,
    split_labels: np.ndarray,
    *,
    seed: int = 0,
    train_split: str | None = None,
    test_split: str | None = None,
    test_fraction: float = 0.3,
    validation_fraction: float = 0.3,
) -> Splits:
    """Named splits when given (`--train-split/--test-split`), else a hash split by fraction."""
    if train_split or test_split:
        known = sorted({str(s) for s in split_labels if s})
        if test_split is None:
            raise DataError("give --test-split with --train-split (e.g. --test-split test)")
        test_mask = split_labels == test_split
        train_mask = split_labels == train_split if train_split else ~test_mask
        for name, mask in ((test_split, test_mask), (train_split, train_mask)):
            if name and not mask.any():
                raise DataError(
                    f"no items with split {name!r} (splits here: {', '.join(known) or 'none'}); "
                    "use --test-fraction instead"
                )
        if not train_mask.any():
            raise DataError(f"every item is in split {test_split!r}; nothing is left to fit on")
        test_name = test_split
    else:
        if not 0 < test_fraction < 1:
            raise DataError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
        test_mask = unit_hash(item_ids, seed, "test") < test_fraction
        train_mask = ~test_mask
        test_name = f"hash test fraction {test_fraction:g} (seed {seed})"
    train = np.flatnonzero(train_mask)
    test = np.flatnonzero(test_mask)
    if len(train) < 4 or len(test) < 2:
        raise DataError(
            f"too few items to fit and test ({len(train)} train, {len(test)} test); "
            "import more outcomes"
        )
    held = unit_hash(item_ids[train], seed, "validation") < validation_fraction
    if held.all() or not held.any():  # tiny datasets: keep both sides non-empty
        held = np.arange(len(train)) % 3 == 0
    return Splits(fit=train[~held], validation=train[held], test=test, test_name=test_name)
