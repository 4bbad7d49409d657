"""The store: one interface (`base.Store`), two backends (a DuckDB file, a PostgreSQL database).

`open_store(db)` resolves `--db` / `$TRADEOFF_DB` / the per-user default and opens that store:
for a write it is created and migrated; with `create=False` (every read) a missing store is a
`StoreNotFoundError` that says where it looked.
"""

from __future__ import annotations

import os

from tradeoff.evals.store.base import (
    DB_ENV,
    Connection,
    Cursor,
    Store,
    default_db,
    is_url,
    missing_store_message,
    resolve_db,
)

__all__ = [
    "DB_ENV",
    "Connection",
    "Cursor",
    "Store",
    "default_db",
    "is_url",
    "missing_store_message",
    "open_store",
    "resolve_db",
]


def open_store(
    db: str | os.PathLike[str] | None = None, *, create: bool = True, timeout_s: float = 60.0
) -> Store:
    """The store named by `db`, `$TRADEOFF_DB` or the per-user default, at the latest schema.

    `create=False` for commands that only read: they never create a store.
    """
    target = resolve_db(db)
    if is_url(target):
        store: Store = Store(target, timeout_s=timeout_s)
    else:
        from tradeoff.evals.store.duckdb import DuckDBStore

        store = DuckDBStore(target, timeout_s=timeout_s, make_parents=target == default_db())
    if create:
        store.migrate()
        return store
    return store.require()
