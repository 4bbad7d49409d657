"""The items a comparison is made on: a named split, a seeded hash held-out set, or every item.

Every figure on a page comes from one item set, and the page says which. Single models are
measured on exactly its items; a fitted policy stands beside them only when its held-out
metrics came from the same set (`of_policy` reads that from the policy's `split_spec`), so a
policy's test figures are never compared with the singles' train figures. The hash set is the
one `tradeoff fit --test-fraction F --seed S` holds out (`policies.fit.splits.unit_hash`), so a
policy fitted on a dataset without a `test` split is compared on its own held-out items.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tradeoff.policies.fit.splits import DEFAULT_TEST_FRACTION, NAMED_TEST, unit_hash

__all__ = ["ItemSet", "default_for", "hash_members", "of_policy", "options_for"]


class ItemSet(NamedTuple):
    """A named `split`; else the hash set of `fraction` (with `seed`); else every item.

    A tuple, so Streamlit's cache hashes it by value.
    """

    split: str | None = None
    fraction: float | None = None
    seed: int = 0

    @property
    def is_hash(self) -> bool:
        return self.split is None and self.fraction is not None

    def label(self) -> str:
        """For sentences: "the test split", "the held-out 30% hash split (seed 0)"."""
        if self.split is not None:
            return f"the {self.split} split"
        if self.fraction is not None:
            return f"the held-out {self.fraction:.0%} hash split (seed {self.seed})"
        return "every item"

    def option(self) -> str:
        """For a selector: "test split", "30% hash split, seed 0", "every item"."""
        if self.split is not None:
            return f"{self.split} split"
        if self.fraction is not None:
            return f"{self.fraction:.0%} hash split, seed {self.seed}"
        return "every item"

    def fit_flags(self) -> list[str]:
        """`tradeoff fit`'s options that hold out exactly these items."""
        if self.split is not None:
            return ["--test-split", self.split]
        if self.fraction is not None:
            return ["--test-fraction", f"{self.fraction:g}"]
        return []


def default_for(split_sizes: dict[str | None, int]) -> ItemSet:
    """What `tradeoff fit` holds out when told nothing (`policies.fit.splits.default_test_split`):
    the dataset's `test` split when other items are beside it, else a seeded 30% hash split
    (seed 0). `split_sizes` counts items per split (None: items without one)."""
    others = any(n for split, n in split_sizes.items() if split != NAMED_TEST)
    if split_sizes.get(NAMED_TEST) and others:
        return ItemSet(split=NAMED_TEST)
    return ItemSet(fraction=DEFAULT_TEST_FRACTION, seed=0)


def of_policy(metrics: dict[str, Any]) -> ItemSet | None:
    """The items a policy's held-out metrics were measured on; None when unknown (a
    hand-written file, or metrics from before `split_spec` was recorded and no split name)."""
    spec = metrics.get("split_spec")
    if isinstance(spec, dict):
        if spec.get("test_split"):
            return ItemSet(split=str(spec["test_split"]))
        if spec.get("test_fraction") is not None:
            return ItemSet(fraction=float(spec["test_fraction"]), seed=int(spec.get("seed") or 0))
    split = metrics.get("split")
    if isinstance(split, str) and split and not split.startswith("hash"):
        return ItemSet(split=split)
    return None


def options_for(split_sizes: dict[str | None, int], policy_sets: list[ItemSet]) -> list[ItemSet]:
    """The sets a page offers: the dataset's default held-out set first, its named splits, the
    sets its policies were measured on, every item."""
    out = [default_for(split_sizes)]
    named = sorted(s for s in split_sizes if s is not None)
    for candidate in [*(ItemSet(split=s) for s in named), *policy_sets, ItemSet()]:
        if candidate not in out:
            out.append(candidate)
    return out


def hash_members(item_ids: Any, items: ItemSet) -> np.ndarray:
    """A mask over `item_ids`: which belong to the hash set `items`."""
    ids = np.asarray(item_ids, dtype=object)
    assert items.fraction is not None
    return unit_hash(ids, items.seed, "test") < items.fraction
