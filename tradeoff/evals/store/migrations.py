"""Applying the named, append-only migrations of `evals.migrations` on either backend.

Each migration runs once per store inside a transaction and is recorded by name in the
`migrations` table. The list itself lives in `evals.migrations` (append new entries there).
Migrations use portable types (VARCHAR, TEXT, BIGINT, INTEGER, BOOLEAN, DOUBLE PRECISION,
TIMESTAMP, JSON); the first one, written for DuckDB alone, says DOUBLE, which PostgreSQL spells
DOUBLE PRECISION: `for_postgres` rewrites exactly that.
"""

from __future__ import annotations

import re

from tradeoff.evals.migrations import MIGRATIONS, RENAMED

__all__ = ["CREATE_TABLE", "MIGRATIONS", "for_postgres", "pending"]

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS migrations "
    "(name VARCHAR PRIMARY KEY, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
)
_BARE_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)", re.IGNORECASE)


def pending(done: set[str]) -> list[tuple[str, str]]:
    """The migrations not in `done` (under their name or the one before a renumbering), in
    order."""
    return [
        (name, sql)
        for name, sql in MIGRATIONS
        if name not in done and RENAMED.get(name) not in done
    ]


def for_postgres(sql: str) -> str:
    return _BARE_DOUBLE.sub("DOUBLE PRECISION", sql)
