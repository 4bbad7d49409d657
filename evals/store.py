"""The DuckDB store: one file holding models, items, outcomes, runs, policies and the request log.

Concurrency. DuckDB lets one *process* hold a database file open for writing, and a read-only
opener is refused while a writer holds it. Yet the proxy logs requests while the CLI and the
dashboard read the same file. The mechanism here: **no process keeps the file open.** Every use
is a short connection (`Store.connect()`), opened for one transaction or query and closed at
once; opening retries with backoff while another process holds the lock, up to `timeout_s`.
Writers batch (the proxy's log writer, the eval runner) so a connection is opened at most a few
times a second. Long operations (a 100k-row import) hold the lock for seconds; others wait.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from evals.errors import StoreBusyError, StoreError
from evals.migrations import MIGRATIONS

if TYPE_CHECKING:
    import duckdb

DEFAULT_DB = "tradeoff.duckdb"
DB_ENV = "TRADEOFF_DB"


def resolve_db_path(db: str | os.PathLike[str] | None = None) -> Path:
    """`--db` wins, then `$TRADEOFF_DB`, then `./tradeoff.duckdb`."""
    return Path(db or os.environ.get(DB_ENV) or DEFAULT_DB)


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


class Store:
    """A handle on a store file. Cheap to create; holds no connection between uses."""

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._migrated = False

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits while another process holds the file.

        Within one process, connections to a file take turns (`_process_lock`): DuckDB shares
        one database instance per file in a process, and a thread opening it while another
        closes its last connection fails ("Unique file handle conflict"). The proxy's writers,
        its policy poller and its feedback route are such threads.
        """
        if not self._migrated:
            self.migrate()
        with _process_lock(self.path):
            con = self._open(read_only=read_only)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection inside BEGIN/COMMIT; any exception rolls everything back."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def migrate(self) -> list[str]:
        """Apply the migrations this file lacks; return their names."""
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(
                f"cannot create store {self.path}: folder {self.path.parent} does not exist"
            )
        with _process_lock(self.path):
            applied = self._migrate()
        self._migrated = True
        return applied

    def _migrate(self) -> list[str]:
        con = self._open(read_only=False)
        applied: list[str] = []
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS migrations "
                "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
            )
            done = {row[0] for row in con.execute("SELECT name FROM migrations").fetchall()}
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(sql)
                    con.execute("INSERT INTO migrations (name) VALUES (?)", [name])
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
                applied.append(name)
        finally:
            con.close()
        return applied

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        # Imported here, not at the top: every command imports this module (through
        # `evals.errors`), and `tradeoff --help` should not pay for loading DuckDB.
        import duckdb

        deadline = time.monotonic() + self.timeout_s
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"cannot open store {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"store {self.path} stayed locked by another process for "
                        f"{self.timeout_s:.0f}s; retry when it finishes"
                    ) from exc
            # Jitter keeps several waiting processes from retrying in lockstep.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)


_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.RLock:
    """One re-entrant lock per store file in this process."""
    key = os.path.abspath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def open_store(db: str | os.PathLike[str] | None = None, *, timeout_s: float = 60.0) -> Store:
    """The store named by `--db`, `$TRADEOFF_DB` or the default, migrated to the latest schema."""
    store = Store(resolve_db_path(db), timeout_s=timeout_s)
    store.migrate()
    return store
