"""Train / test splits of a dataset's items: named splits or a seeded hash.

With no split named and no test fraction given, a dataset that has its own `test` split is
measured on it (the split its publishers meant to hold out), so `fit`, `frontier` and the demo
answer on the same items; otherwise a seeded hash holds out `DEFAULT_TEST_FRACTION`.

The hash split is deterministic: an item's side depends only on its id and the seed, so adding
items to a dataset never moves the old ones between train and test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tradeoff.policies.errors import DataError

DEFAULT_TEST_FRACTION = 0.3
NAMED_TEST = "test"


@dataclass(frozen=True)
class Splits:
    """Index arrays into an `Outcomes`: fit (train minus validation), validation, test; and how
    the test items were chosen (to recompute the same split later)."""

    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    test_name: str
    train_name: str | None = None
    test_split: str | None = None
    test_fraction: float | None = None

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


def default_test_split(split_labels: np.ndarray) -> str | None:
    """`test` when the dataset has that split and other items beside it, else None."""
    labels = np.asarray(split_labels, dtype=object)
    has_test = labels == NAMED_TEST
    return NAMED_TEST if has_test.any() and not has_test.all() else None


def make_splits(
    item_ids: np.ndarray,
    split_labels: np.ndarray,
    *,
    seed: int = 0,
    train_split: str | None = None,
    test_split: str | None = None,
    test_fraction: float | None = None,
    validation_fraction: float = 0.0,
    split_option: str = "--test-split",
) -> Splits:
    """Named splits when given (or the dataset's own `test` split when neither a split nor a
    fraction is), else a seeded hash split by fraction. `split_option` names the command's
    option in error messages."""
    if train_split is None and test_split is None and test_fraction is None:
        test_split = default_test_split(split_labels)
    if train_split or test_split:
        known = sorted({str(s) for s in split_labels if s})
        if test_split is None:
            raise DataError(f"give {split_option} with --train-split (e.g. {split_option} test)")
        test_mask = split_labels == test_split
        train_mask = split_labels == train_split if train_split else ~test_mask
        for name, mask in ((test_split, test_mask), (train_split, train_mask)):
            if name and not mask.any():
                hint = f"use {split_option} with one of them" if known else f"omit {split_option}"
                raise DataError(
                    f"no items with split {name!r} (splits here: {', '.join(known) or 'none'}); "
                    f"{hint}, or leave it out for a seeded {DEFAULT_TEST_FRACTION:.0%} hash split"
                )
        if not train_mask.any():
            raise DataError(f"every item is in split {test_split!r}; nothing is left to fit on")
        test_name, fraction = test_split, None
    else:
        fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        if not 0 < fraction < 1:
            raise DataError(f"--test-fraction must be between 0 and 1, got {fraction}")
        test_mask = unit_hash(item_ids, seed, "test") < fraction
        train_mask = ~test_mask
        test_name = f"hash test fraction {fraction:g} (seed {seed})"
    train = np.flatnonzero(train_mask)
    test = np.flatnonzero(test_mask)
    if len(train) < 4 or len(test) < 2:
        raise DataError(
            f"too few items to fit and test ({len(train)} train, {len(test)} test); "
            "import more outcomes"
        )
    held = np.zeros(len(train), dtype=bool)
    if validation_fraction > 0:
        held = unit_hash(item_ids[train], seed, "validation") < validation_fraction
        if held.all() or not held.any():  # tiny datasets: keep both sides non-empty
            held = np.arange(len(train)) % 3 == 0
    return Splits(
        fit=train[~held],
        validation=train[held],
        test=test,
        test_name=test_name,
        train_name=train_split,
        test_split=test_split,
        test_fraction=fraction,
    )
