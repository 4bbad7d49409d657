"""Fixtures every test package shares: child processes that are always stopped, no test
touching the user's real store, and a throwaway PostgreSQL cluster for the tests that run
against both store backends."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support import processes
from tests.support.postgres import ENABLE_HINT, Cluster, find_bin

Spawn = Callable[..., subprocess.Popen[Any]]
_SESSION_DATA_HOME = tempfile.mkdtemp(prefix="tradeoff-xdg-")


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`spawn(argv, **popen)`: start a child with default signal dispositions in a group of its
    own (tests/support/processes.py); every group started is stopped when the test ends."""
    started: list[subprocess.Popen[Any]] = []

    def start(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        process = processes.spawn(argv, **popen)
        started.append(process)
        return process

    yield start
    for process in started:
        processes.stop(process)


def pytest_configure(config: pytest.Config) -> None:
    # Before any fixture or import-time code resolves the default store: the per-user default
    # ($XDG_DATA_HOME/tradeoff/tradeoff.duckdb) lives in a temporary folder, never in $HOME.
    os.environ["XDG_DATA_HOME"] = _SESSION_DATA_HOME
    os.environ.pop("TRADEOFF_DB", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SESSION_DATA_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_data_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own per-user data folder (so a default store never leaks between tests)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("TRADEOFF_DB", raising=False)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server for the session (initdb + postgres in a temp folder, free port);
    skipped where the binaries are missing, except in CI, which must run these tests."""
    bin_dir = find_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {ENABLE_HINT}")
        pytest.skip(ENABLE_HINT)
    cluster = Cluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A new, empty database on the session's server."""
    return pg_cluster.create_database()


@pytest.fixture(params=["duckdb", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, not yet created store of each backend goes: a file path, a database URL."""
    if request.param == "duckdb":
        return str(tmp_path / "store.duckdb")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def replicas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`start(args)`: one more `tradeoff serve ARGS` replica (tests/router/replicas.py); all
    stopped at the end. Their spools (keyed by the store's URL) go under the test's folder."""
    from tests.router.replicas.support import Replica
    from tests.router.support import serve_process

    monkeypatch.setenv("TRADEOFF_SPOOL_DIR", str(tmp_path / "spool"))
    started: list[subprocess.Popen[str]] = []

    def start(args: list[str]) -> Replica:
        process, url, stderr = serve_process(args)
        started.append(process)
        return Replica(process, url, stderr)

    yield start
    for process in started:
        processes.stop(process)
