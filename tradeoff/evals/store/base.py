"""The store contract: what every backend gives the rest of tradeoff.

A store holds models, datasets, items, outcomes, runs, policies and the request log in the
tables `evals.migrations` defines, with the same table and column names on every backend. Two
backends implement this contract: an embedded DuckDB file (the default, `duckdb.py`) and a
PostgreSQL database (`postgres.py`) that several processes or hosts share. `Store(target)` and
`open_store(target)` pick the backend from what the user passes, a file path or a
`postgresql://` URL, the way `pathlib.Path` picks its flavour.

Life cycle. A `Store` is a cheap handle that holds no connection between uses.

- `exists()` says whether the store was created. Reads never create one: `require()` raises
  `StoreNotFoundError` (saying which store was looked for and how to point at another) where a
  write would call `migrate()`.
- `migrate()` creates the store if needed and applies the named migrations it lacks, each
  recorded in the `migrations` table. Several processes may call it at the same moment.
- `connect(read_only=...)` lends a short-lived connection for one query or a few;
  `transaction()` lends one inside BEGIN/COMMIT, rolled back on any exception. A read-only
  connection refuses writes to the store's tables.
- A connection speaks one SQL on every backend: `?` (or `$name` with a dict) placeholders,
  standard SQL and `INSERT ... ON CONFLICT (...) DO NOTHING / DO UPDATE`. `execute()` returns a
  cursor with `fetchone()`, `fetchall()`, `description` and `df()` (pandas). JSON columns read
  back as text; TIMESTAMP columns hold naive UTC (every connection's time zone is UTC).
- Bulk rows: `con.register(name, arrow_table_or_dataframe)` makes the rows a table called
  `name` for the following statements (`INSERT INTO t SELECT ... FROM name ON CONFLICT ...`);
  `con.unregister(name)` drops it.
- Shared state across processes: `lock(name)` is an exclusive advisory lock; `increment(scope,
  key, delta)` adds to a counter atomically and returns its new value (`counter` reads it,
  `counter_updated_at` says when it last changed).

Errors: `StoreNotFoundError` (no store there), `StoreBusyError` (a lock held past `timeout_s`),
`StoreError` (cannot open it, or it is in an unexpected state).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tradeoff.evals.errors import StoreNotFoundError, UsageError

if TYPE_CHECKING:
    import pandas as pd

DB_ENV = "TRADEOFF_DB"
DEFAULT_NAME = "tradeoff.duckdb"
URL_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    """The result of `Connection.execute`."""

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def df(self) -> pd.DataFrame: ...


class Connection(Protocol):
    """A connection lent by `Store.connect()` or `Store.transaction()`."""

    def execute(self, query: str, parameters: Any = None) -> Cursor: ...

    def executemany(self, query: str, parameters: Any = None) -> Cursor: ...

    def register(self, view_name: str, python_object: Any) -> Any: ...

    def unregister(self, view_name: str) -> Any: ...


def is_url(target: str | os.PathLike[str]) -> bool:
    return isinstance(target, str) and "://" in target


def default_db() -> Path:
    """The per-user store: `$XDG_DATA_HOME/tradeoff/tradeoff.duckdb` (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tradeoff" / DEFAULT_NAME


def resolve_db(db: str | os.PathLike[str] | None = None) -> str | Path:
    """`--db` wins, then `$TRADEOFF_DB`, then the per-user default; a URL stays a string."""
    target = db or os.environ.get(DB_ENV) or default_db()
    if is_url(target):
        if not str(target).startswith(URL_SCHEMES):
            raise UsageError(
                f"--db {target}: unsupported store URL; give a file path or a "
                "postgresql://user:password@host:port/database URL"
            )
        return str(target)
    return Path(target)


def missing_store_message(location: str) -> str:
    """One line: which store was looked for and how to point at another or create it."""
    hint = ""
    local = Path(DEFAULT_NAME)
    if local.is_file() and str(local.resolve()) != location:
        hint = f" (there is one in this folder: --db {DEFAULT_NAME})"
    return (
        f"no store at {location}{hint}; point at one with --db PATH_OR_URL or ${DB_ENV}, "
        "or create it with `tradeoff demo` or `tradeoff import`"
    )


class Store:
    """A handle on one store; see the module docstring for the contract. `Store(target)`
    returns the backend's subclass; the methods below that raise NotImplementedError are what a
    backend implements."""

    timeout_s: float

    def __new__(cls, target: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Store:
        if cls is Store:  # each backend imports its own driver, and only when used
            if is_url(resolve_db(target)):
                from tradeoff.evals.store.postgres import PostgresStore as backend
            else:
                from tradeoff.evals.store.duckdb import DuckDBStore as backend  # type: ignore[assignment]
            cls = backend
        return super().__new__(cls)

    @property
    def location(self) -> str:
        """Where the store is, for messages (a path, or a URL without its password)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.location

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def exists(self) -> bool:
        """Whether the store was created (by `migrate()`)."""
        raise NotImplementedError

    def migrate(self) -> list[str]:
        """Create the store if needed and apply the migrations it lacks; their names."""
        raise NotImplementedError

    def connect(
        self, *, read_only: bool = False, threads: int | None = None
    ) -> AbstractContextManager[Connection]:
        """A short-lived connection. `threads` caps an embedded engine's thread pool for small
        statements (DuckDB); a server ignores it."""
        raise NotImplementedError

    def transaction(self, *, threads: int | None = None) -> AbstractContextManager[Connection]:
        """A write connection inside BEGIN/COMMIT; any exception rolls everything back."""
        raise NotImplementedError

    def lock(self, name: str, *, timeout_s: float | None = None) -> AbstractContextManager[None]:
        """Hold an exclusive lock named `name`, shared by every process using this store;
        raises StoreBusyError after `timeout_s` (default: the store's)."""
        raise NotImplementedError

    def require(self) -> Store:
        """The store if it exists (brought up to date), else StoreNotFoundError: for reads."""
        if not self.exists():
            raise StoreNotFoundError(missing_store_message(self.location))
        self.migrate()
        return self

    def increment(self, scope: str, key: str, delta: float) -> float:
        """Add `delta` to the counter (scope, key), created at 0; its new value, atomically."""
        with self.transaction(threads=1) as con:
            row = con.execute(
                "INSERT INTO counters (scope, key, value, updated_at) "
                "VALUES (?, ?, ?, current_timestamp) ON CONFLICT (scope, key) DO UPDATE SET "
                "value = counters.value + excluded.value, updated_at = excluded.updated_at "
                "RETURNING value",
                [scope, key, delta],
            ).fetchone()
        assert row is not None
        return float(row[0])

    def counter(self, scope: str, key: str) -> float:
        """The counter's value (0 when it was never incremented)."""
        with self.connect(read_only=True, threads=1) as con:
            row = con.execute(
                "SELECT value FROM counters WHERE scope = ? AND key = ?", [scope, key]
            ).fetchone()
        return float(row[0]) if row else 0.0

    def counter_updated_at(self, scope: str, key: str) -> datetime | None:
        """When the counter was last incremented (naive UTC); None when it never was."""
        with self.connect(read_only=True, threads=1) as con:
            row = con.execute(
                "SELECT updated_at FROM counters WHERE scope = ? AND key = ?", [scope, key]
            ).fetchone()
        return row[0] if row else None
