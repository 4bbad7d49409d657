"""Fixtures: one seeded store per session (a real DuckDB file, and its copy in PostgreSQL) and
AppTest runners on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.seed import seed_store, seed_wide
from tests.support.copy_store import copy_store
from tests.support.postgres import Cluster
from tradeoff.dashboard import app_path
from tradeoff.evals.store import Store

TIMEOUT_S = 30


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "seeded.duckdb"
    seed_wide(seed_store(path))
    return path


@pytest.fixture(scope="session")
def seeded_pg(seeded_db: Path, pg_cluster: Cluster) -> str:
    """The seeded store's rows in a PostgreSQL database; its URL."""
    url = pg_cluster.create_database("seeded")
    copy_store(Store(seeded_db), Store(url))
    return url


@pytest.fixture(params=["duckdb", "postgres"])
def seeded_store(request: pytest.FixtureRequest, seeded_db: Path) -> Store:
    """The seeded store on each backend."""
    if request.param == "duckdb":
        return Store(seeded_db)
    return Store(request.getfixturevalue("seeded_pg"))


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path, str | None], AppTest]]:
    """Run the app on a store, on the given page (a path under dashboard/, None = landing)."""

    def run(db: Path | str, page: str | None = None) -> AppTest:
        monkeypatch.setenv("TRADEOFF_DB", str(db))
        at = AppTest.from_file(str(app_path()), default_timeout=TIMEOUT_S).run()
        if page is not None:
            at.switch_page(page).run()
        return at

    yield run
