"""The embedded backend: one DuckDB file (the default store).

Concurrency. DuckDB lets one *process* hold a database file open for writing, and a read-only
opener is refused while a writer holds it. Yet the proxy logs requests while the CLI and the
dashboard read the same file. The mechanism here: **no process keeps the file open.** Every use
is a short connection (`connect()`), opened for one transaction or query and closed at once;
opening retries with backoff while another process holds the lock, up to `timeout_s`, and
while the file reads torn (DuckDB's "Could not read enough bytes": a reader opening it just as
a writer finishes with it), for a few seconds. Writers
batch (the proxy's log writer, the eval runner) so a connection is opened at most a few times a
second. Long operations (a 100k-row import) hold the lock for seconds; others wait.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tradeoff.evals.errors import StoreBusyError, StoreError, StoreNotFoundError
from tradeoff.evals.store.base import Store, missing_store_message
from tradeoff.evals.store.migrations import CREATE_TABLE, pending

if TYPE_CHECKING:
    import duckdb

__all__ = ["DuckDBStore"]

T = TypeVar("T")

# Every connection: naive TIMESTAMPs in UTC (as on PostgreSQL), and no progress bar (DuckDB
# prints it to stdout, which is a CLI's --json output or the dashboard server's log).
_SETUP = "SET TimeZone = 'UTC'; SET enable_progress_bar = false"


# How long a torn read at open is retried (at most half the store's timeout): long enough for a
# writer to finish what it was writing, short enough that a truly truncated file fails fast.
TORN_READ_S = 5.0


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _is_torn_read(exc: Exception) -> bool:
    """The file was shorter than what DuckDB read of it said: on a loaded machine a reader
    opening the file as a writer finishes with it sees this, and the next open does not."""
    return "Could not read enough bytes" in str(exc)


class DuckDBStore(Store):
    """A store in one DuckDB file. Cheap to create; holds no connection between uses."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout_s: float = 60.0,
        make_parents: bool = False,
    ) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.make_parents = make_parents
        self._migrated = False

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def connect(
        self, *, read_only: bool = False, threads: int | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits while another process holds the file.

        Within one process, connections to a file take turns (`_process_lock`): DuckDB shares
        one database instance per file in a process, and a thread opening it while another
        closes its last connection fails ("Unique file handle conflict"). The proxy's writers,
        its policy poller and its feedback route are such threads.
        """
        if not self._migrated:
            if read_only and not self.exists():
                raise StoreNotFoundError(missing_store_message(self.location))
            self.migrate()
        with _process_lock(self.path):
            con = self._open(read_only=read_only)
            try:
                if threads is not None:
                    con.execute(f"SET threads = {int(threads)}")
                yield con
            finally:
                con.close()

    @contextmanager
    def transaction(self, *, threads: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect(threads=threads) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def migrate(self) -> list[str]:
        if not self.path.parent.exists():
            if not self.make_parents:
                raise StoreError(
                    f"cannot create store {self.path}: folder {self.path.parent} does not exist"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with _process_lock(self.path):
            applied = self._migrate()
        self._migrated = True
        return applied

    def _migrate(self) -> list[str]:
        con = self._open(read_only=False)
        applied: list[str] = []
        try:
            con.execute(CREATE_TABLE)
            done = {row[0] for row in con.execute("SELECT name FROM migrations").fetchall()}
            for name, sql in pending(done):
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

    @contextmanager
    def lock(self, name: str, *, timeout_s: float | None = None) -> Iterator[None]:
        """An flock on a file beside the store (`<store>.<name>.lock`)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        path = self.path.with_name(f"{self.path.name}.{safe}.lock")
        wait = self.timeout_s if timeout_s is None else timeout_s
        with open(path, "a") as handle:
            _wait_for(
                lambda: fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB),
                wait,
                f"lock {name!r} of store {self.path} stayed held by another process for "
                f"{wait:g}s; retry when it is released",
            )
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        # Imported here, not at the top: every command imports this module (through
        # `evals.errors`), and `tradeoff --help` should not pay for loading DuckDB.
        import duckdb

        torn_until = time.monotonic() + min(TORN_READ_S, self.timeout_s / 2)

        def attempt() -> duckdb.DuckDBPyConnection:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                if _is_lock_error(exc):
                    raise BlockingIOError from exc
                if _is_torn_read(exc) and time.monotonic() < torn_until:
                    raise BlockingIOError from exc
                if read_only and not self.exists():
                    raise StoreNotFoundError(missing_store_message(self.location)) from None
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            con.execute(_SETUP)
            return con

        return _wait_for(
            attempt,
            self.timeout_s,
            f"store {self.path} stayed locked by another process for {self.timeout_s:.0f}s; "
            "retry when it finishes",
        )


def _wait_for(attempt: Callable[[], T], timeout_s: float, busy: str) -> T:
    """Call `attempt` until it does not raise BlockingIOError, backing off; StoreBusyError with
    the `busy` message after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return attempt()
        except BlockingIOError as exc:
            if time.monotonic() >= deadline:
                raise StoreBusyError(busy) from exc.__cause__ or exc
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
