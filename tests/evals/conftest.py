"""Shared fixtures for tests/evals: a fresh store file, a content snapshot, the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import tradeoff
from tradeoff.evals.store import Store

TABLES = ("models", "datasets", "items", "runs", "outcomes", "policies", "requests", "migrations")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A migrated store in a fresh DuckDB file."""
    s = Store(tmp_path / "store.duckdb")
    s.migrate()
    return s


def snapshot(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted: equal snapshots mean equal content."""
    with store.connect(read_only=True) as con:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


CliResult = tuple[int, str, str]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """`run_cli("datasets", "--db", path)` -> (exit code, stdout, stderr), in-process."""

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = tradeoff.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
