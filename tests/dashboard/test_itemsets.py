"""The item sets a comparison is made on: the same items `tradeoff fit` holds out."""

from __future__ import annotations

import numpy as np

from tradeoff.dashboard.itemsets import ItemSet, default_for, hash_members, of_policy, options_for
from tradeoff.policies.fit.splits import make_splits


def test_the_default_is_what_fit_holds_out_when_told_nothing() -> None:
    assert default_for({"train": 70, "test": 30}) == ItemSet(split="test")
    assert default_for({None: 70, "test": 30}) == ItemSet(split="test")
    assert default_for({"test": 30}) == ItemSet(fraction=0.3, seed=0)  # nothing else to fit on
    assert default_for({None: 809}) == ItemSet(fraction=0.3, seed=0)


def test_the_hash_set_is_the_one_fit_holds_out() -> None:
    ids = np.array([f"item-{k}" for k in range(500)], dtype=object)
    for seed in (0, 3):
        splits = make_splits(ids, np.array([""] * len(ids), dtype=object), seed=seed,
                             test_fraction=0.3)  # fmt: skip
        mask = hash_members(ids, ItemSet(fraction=0.3, seed=seed))
        assert sorted(np.flatnonzero(mask)) == sorted(splits.test)


def test_a_policy_says_where_its_figures_come_from() -> None:
    spec = {"train_split": None, "test_split": None, "test_fraction": 0.3, "seed": 2}
    assert of_policy({"split_spec": spec}) == ItemSet(fraction=0.3, seed=2)
    named = {"test_split": "test", "train_split": "train", "test_fraction": None, "seed": 0}
    assert of_policy({"split_spec": named}) == ItemSet(split="test")
    assert of_policy({"split": "test"}) == ItemSet(split="test")  # before split_spec existed
    assert of_policy({"split": "hash test fraction 0.3 (seed 0)"}) is None  # seed unknowable
    assert of_policy({}) is None


def test_options_offer_the_default_first_then_splits_policies_and_everything() -> None:
    options = options_for({"train": 7, "test": 3}, [ItemSet(fraction=0.2, seed=1)])
    assert options == [
        ItemSet(split="test"),
        ItemSet(split="train"),
        ItemSet(fraction=0.2, seed=1),
        ItemSet(),
    ]
    assert [o.option() for o in options] == [
        "test split", "train split", "20% hash split, seed 1", "every item",
    ]  # fmt: skip
    assert ItemSet(fraction=0.3, seed=0).fit_flags() == ["--test-fraction", "0.3"]
    assert ItemSet(split="test").fit_flags() == ["--test-split", "test"]
    assert ItemSet().label() == "every item"
