"""The owner of items and outcomes (`evals.store.outcomes`), on both backends: what a second
write of the same outcome does, a score set by hand, a dataset copied into another in the
transaction that emptied it, and the reads fitting uses."""

from __future__ import annotations

import pytest

from tradeoff.evals.store import Store
from tradeoff.evals.store.outcomes import (
    copy_rows,
    count_items,
    dataset_items,
    dataset_outcomes,
    delete_rows,
    insert_items,
    insert_outcomes,
    item_table,
    outcome_table,
    record_dataset,
    record_models,
    record_score,
)


@pytest.fixture
def store(store_target: str) -> Store:
    s = Store(store_target)
    s.migrate()
    return s


def _outcome(item_id: str, model: str, **fields: object) -> dict[str, object]:
    return {"dataset": "d", "item_id": item_id, "model": model, "params_hash": "",
            "sample": 0, **fields}  # fmt: skip


def _scores(store: Store, dataset: str = "d") -> dict[tuple[str, str], tuple[object, ...]]:
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT item_id, model, score, error, run_id FROM outcomes WHERE dataset = ?",
            [dataset],
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def test_a_second_write_replaces_errors_or_keeps_what_is_there(store: Store) -> None:
    with store.transaction() as con:
        record_dataset(con, "d", "test")
        record_models(con, ["a", "b"], "test")
        insert_items(con, item_table([{"dataset": "d", "item_id": i, "task": "t",
                                       "prompt": f"q{i}", "metadata": '{"k": 1}'}
                                      for i in ("1", "2")]))  # fmt: skip
        insert_outcomes(
            con,
            outcome_table([_outcome("1", "a", score=None, error="timeout", run_id="r1"),
                           _outcome("2", "a", score=1.0, run_id="r1")]),
            on_conflict="replace_errors",
        )  # fmt: skip
    with store.transaction() as con:  # a resumed eval: the error is replaced, the answer kept
        insert_outcomes(
            con,
            outcome_table([_outcome("1", "a", score=0.5, run_id="r2"),
                           _outcome("2", "a", score=0.0, run_id="r2")]),
            on_conflict="replace_errors",
        )  # fmt: skip
        insert_outcomes(  # traffic: what is there stays
            con, outcome_table([_outcome("1", "a", score=0.0, run_id="shadow")]), on_conflict="keep"
        )
        record_score(con, "d", "2", "b", 1.0, cost_usd=0.1, run_id="feedback")
        record_score(con, "d", "2", "a", 0.25, cost_usd=None, run_id="feedback")
    assert _scores(store) == {
        ("1", "a"): (0.5, None, "r2"),
        ("2", "a"): (0.25, None, "feedback"),
        ("2", "b"): (1.0, None, "feedback"),
    }
    with store.connect(read_only=True) as con:
        items = dataset_items(con, "d")
        rows = dataset_outcomes(con, "d")
    assert [(i[0], i[1], i[2], i[4]) for i in items] == [("1", "t", "q1", ""), ("2", "t", "q2", "")]
    assert sorted((r[0], r[1], r[3], bool(r[6])) for r in rows) == [
        ("1", "a", 0.5, False),
        ("2", "a", 0.25, False),
        ("2", "b", 1.0, False),
    ]


def test_a_dataset_is_rebuilt_from_others_in_one_transaction(store: Store) -> None:
    with store.transaction() as con:
        for name in ("src", "traffic"):
            record_dataset(con, name, "test")
            insert_items(con, item_table([{"dataset": name, "item_id": i, "task": "t"}
                                          for i in ("1", "2", "3")]))  # fmt: skip
            insert_outcomes(
                con,
                outcome_table([{**_outcome(i, m, score=1.0), "dataset": name}
                               for i in ("1", "2", "3") for m in ("a", "b", "c")]),
                on_conflict="keep",
            )  # fmt: skip
    for _ in range(2):  # the second rebuild deletes the first in the same transaction
        with store.transaction() as con:
            delete_rows(con, "refit")
            record_dataset(con, "refit", "refit", description="rebuilt")
            copy_rows(con, "refit", "src", models=["a", "b"])
            from_source = count_items(con, "refit")
            copy_rows(con, "refit", "traffic", models=["a", "c"], item_ids=["3", "9"])
            total = count_items(con, "refit")
        assert (from_source, total) == (3, 3)  # traffic item 3 was there already: kept
        assert sorted(_scores(store, "refit")) == [
            ("1", "a"), ("1", "b"), ("2", "a"), ("2", "b"), ("3", "a"), ("3", "b"), ("3", "c")
        ]  # fmt: skip
    with store.transaction() as con:  # `keep` leaves a dataset row as it is
        record_dataset(con, "refit", "other", description="changed", keep=True)
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT source, description FROM datasets WHERE name = 'refit'")
        assert row.fetchall() == [("refit", "rebuilt")]
