"""Copy every row of one store into another (any backends), through the store contract only.

Tests and benchmarks build a store with DuckDB SQL (`tests/dashboard/seed.py`) and copy it to
PostgreSQL, so both backends answer the same queries on the same rows. Values pass through
pandas, so a float NaN arrives as NULL.
"""

from __future__ import annotations

from tradeoff.evals.store import Store

TABLES = (
    "models", "datasets", "items", "runs", "outcomes", "policies", "requests",
    "policy_versions", "policy_events", "loop_pairs", "feedback", "reviews",
)  # fmt: skip


def copy_store(src: Store, dst: Store, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    """Insert `src`'s rows into `dst` (existing keys are kept); rows copied per table."""
    dst.migrate()
    copied = {}
    for table in tables:
        with src.connect(read_only=True) as con:
            frame = con.execute(f"SELECT * FROM {table}").df()
        with dst.transaction() as con:
            types = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            columns = [name for name, _ in types if name in frame.columns]
            con.register("copied_rows", frame[columns])
            select = ", ".join(f"CAST({c} AS {t})" for c, t in types if c in columns)
            con.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM copied_rows "
                "ON CONFLICT DO NOTHING"
            )
            con.unregister("copied_rows")
        copied[table] = len(frame)
    return copied
