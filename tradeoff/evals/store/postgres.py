"""The server backend: a PostgreSQL database shared by several processes or hosts.

`--db postgresql://user:password@host:port/database` (or `TRADEOFF_DB`). The database must
exist (`createdb`); the first write creates the tables in its default schema. Connections are
pooled per process (a few idle ones kept, none shared between threads or across a fork); each
runs with `TimeZone=UTC`, `lock_timeout` = the store's timeout, and, when lent read-only,
`default_transaction_read_only`. Migrations run in one transaction under an advisory lock, so
replicas that start together on an empty database apply them once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tradeoff.evals.errors import StoreBusyError, StoreError
from tradeoff.evals.store.base import Store
from tradeoff.evals.store.migrations import CREATE_TABLE, for_postgres, pending
from tradeoff.evals.store.pg_connection import PgConnection, configure

__all__ = ["PostgresStore"]

_IDLE_PER_MODE = 4  # idle connections a process keeps per mode (read-only, read-write)
_MIGRATIONS_LOCK = "tradeoff:migrations"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class PostgresStore(Store):
    """A store in a PostgreSQL database. Cheap to create; keeps a few idle connections."""

    def __init__(self, url: str, *, timeout_s: float = 60.0, **_: Any) -> None:
        self.url = str(url)
        self.timeout_s = timeout_s
        self._idle: dict[bool, list[psycopg.Connection[Any]]] = {True: [], False: []}
        self._guard = threading.Lock()
        self._pid = os.getpid()
        self._migrated = False

    @property
    def location(self) -> str:
        return redact(self.url)

    def exists(self) -> bool:
        with self._raw(read_only=True) as raw:
            row = raw.execute("SELECT to_regclass('migrations') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def migrate(self) -> list[str]:
        with self._raw(read_only=False) as raw:
            if not pending(self._done(raw)):
                self._migrated = True
                return []
            applied: list[str] = []
            with raw.transaction():
                # Replicas starting at once on an empty database queue here; each then sees
                # what the first applied.
                raw.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_MIGRATIONS_LOCK]
                )
                raw.execute(CREATE_TABLE)
                for name, sql in pending(self._done(raw)):
                    raw.execute(for_postgres(sql))
                    raw.execute("INSERT INTO migrations (name) VALUES (%s)", [name])
                    applied.append(name)
        self._migrated = True
        return applied

    @contextmanager
    def connect(
        self, *, read_only: bool = False, threads: int | None = None
    ) -> Iterator[PgConnection]:
        del threads  # the server schedules its own work
        if not self._migrated:
            self.require() if read_only else self.migrate()
        with self._raw(read_only=read_only) as raw:
            con = PgConnection(raw, read_only=read_only)
            try:
                yield con
            finally:
                if con.registered:
                    raw.close()  # its temp tables would leak into the next borrower

    @contextmanager
    def transaction(self, *, threads: int | None = None) -> Iterator[PgConnection]:
        with self.connect(threads=threads) as con, con.raw.transaction():
            yield con

    @contextmanager
    def lock(self, name: str, *, timeout_s: float | None = None) -> Iterator[None]:
        wait_ms = int(1000 * (self.timeout_s if timeout_s is None else timeout_s))
        key = f"tradeoff:{name}"
        with self._raw(read_only=False) as raw:
            raw.execute(f"SET lock_timeout = {max(wait_ms, 1)}")
            try:
                raw.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
            except psycopg.errors.LockNotAvailable as exc:
                raise StoreBusyError(
                    f"lock {name!r} of store {self.location} stayed held by another process "
                    f"for {wait_ms / 1000:g}s; retry when it is released"
                ) from exc
            finally:
                raw.execute("RESET lock_timeout")
            try:
                yield
            finally:
                raw.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])

    def _done(self, raw: psycopg.Connection[Any]) -> set[str]:
        row = raw.execute("SELECT to_regclass('migrations') IS NOT NULL").fetchone()
        if not (row and row[0]):
            return set()
        return {r[0] for r in raw.execute("SELECT name FROM migrations").fetchall()}

    @contextmanager
    def _raw(self, *, read_only: bool) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, returned to the pool when it is clean (idle, not broken).

        A connection that fails (the server restarted, went away, shut down) is a StoreError,
        "cannot reach the store", not an error of the statement: callers then keep their work
        for later instead of blaming it (the request log's spool holds its rows). The pool's
        idle connections date from before the failure too, so they are dropped with it.
        """
        raw = self._take(read_only)
        try:
            yield raw
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if not isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
                self.close()
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                raise StoreError(f"lost the connection to store {self.location}: {reason}") from exc
            raise
        finally:
            self._give_back(raw, read_only)

    def _take(self, read_only: bool) -> psycopg.Connection[Any]:
        with self._guard:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours
                self._idle = {True: [], False: []}
                self._pid = os.getpid()
            if self._idle[read_only]:
                return self._idle[read_only].pop()
        return self._open(read_only)

    def _give_back(self, raw: psycopg.Connection[Any], read_only: bool) -> None:
        clean = (
            not raw.closed
            and not raw.broken
            and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        with self._guard:
            if clean and self._pid == os.getpid() and len(self._idle[read_only]) < _IDLE_PER_MODE:
                self._idle[read_only].append(raw)
                return
        raw.close()

    def _open(self, read_only: bool) -> psycopg.Connection[Any]:
        options = f"-c TimeZone=UTC -c lock_timeout={int(self.timeout_s * 1000)}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,
                cursor_factory=psycopg.ClientCursor,
                connect_timeout=max(1, min(int(self.timeout_s), 10)),
                options=options,
                application_name="tradeoff",
            )
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to store {self.location}: {reason}; check the URL, that the "
                "server is up and that the database exists (createdb NAME)"
            ) from None
        configure(raw)
        return raw

    def close(self) -> None:
        """Close the idle connections (in-use ones close when given back)."""
        with self._guard:
            idle, self._idle = self._idle, {True: [], False: []}
        for conns in idle.values():
            for raw in conns:
                raw.close()
