"""Loading outcomes after adaptive evaluation: a dropped candidate is left out (its unmeasured
items are neither failures nor a reason to shrink every other model's data), so no policy can
route to it where it was not measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.policies.synthetic import build_store
from tradeoff.evals.adaptive import Drop
from tradeoff.evals.adaptive.drops import record_drop
from tradeoff.evals.store import Store
from tradeoff.policies.data import load_outcomes


def store_with_a_partial_model(path: Path) -> Store:
    """`a` and `b` measured on all 100 items; `c` on the first 60 only."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(rng.random() < 0.8)

    store = build_store(path, tasks={"t": 100}, models={"a": 1.0, "b": 0.5, "c": 0.1}, score=score)
    with store.transaction() as con:
        con.execute("DELETE FROM outcomes WHERE model = 'c' AND item_id >= 't-00060'")
    return store


def test_a_dropped_candidate_is_left_out_and_the_items_stay(tmp_path: Path) -> None:
    store = store_with_a_partial_model(tmp_path / "s.duckdb")
    before = load_outcomes(store, "synth")
    # Without a drop record a partly measured model keeps only the items all models share.
    assert before.models == ("a", "b", "c") and before.n == 60

    drop = Drop("c", 60, "below the floor (accuracy >= 95% of baseline) on every task")
    record_drop(store, "synth", drop, "", "accuracy >= 95% of baseline", "eval-test")
    after = load_outcomes(store, "synth")
    assert after.models == ("a", "b") and after.n == 100
    assert not np.isnan(after.score).any()
    assert any("c was dropped by adaptive evaluation after 60 items" in n for n in after.notes)


def test_a_dropped_candidate_measured_everywhere_later_is_back(tmp_path: Path) -> None:
    store = build_store(
        tmp_path / "s.duckdb",
        tasks={"t": 20},
        models={"a": 1.0, "c": 0.1},
        score=lambda rng, task, model, i: 1.0,
    )
    record_drop(store, "synth", Drop("c", 10, "dominated by a"), "", "req", "eval-test")
    assert load_outcomes(store, "synth").models == ("a", "c")  # complete now: measured
