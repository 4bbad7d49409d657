"""Migration numbers follow the order migrations apply in, and a store migrated before two were
renumbered does not apply them again."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tradeoff.evals.migrations import MIGRATIONS, RENAMED
from tradeoff.evals.store import Store


def test_numbers_follow_the_order() -> None:
    numbers = [int(name.split("_", 1)[0]) for name, _ in MIGRATIONS]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_a_store_that_recorded_the_old_names_applies_nothing_again(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    for name, sql in MIGRATIONS:
        con.execute(sql)
        con.execute(
            "INSERT INTO migrations VALUES (?, current_timestamp)", [RENAMED.get(name, name)]
        )
    con.close()
    assert Store(path).migrate() == []
