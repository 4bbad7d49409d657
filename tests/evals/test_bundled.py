"""The bundled datasets: import counts match their files (and the sources, where present), the
import is idempotent, and a built wheel carries the files."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from tests.evals.conftest import snapshot
from tradeoff.evals.bundled import BUNDLED, bundled_dir, import_bundled
from tradeoff.evals.store import Store

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO.parent / "shared" / "data"


@pytest.fixture(scope="module")
def bundled_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("bundled") / "store.duckdb")
    import_bundled(store)
    return store


def counts(store: Store, dataset: str) -> tuple[int, int, int]:
    with store.connect(read_only=True) as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM items WHERE dataset = $d), "
            "(SELECT count(*) FROM outcomes WHERE dataset = $d), "
            "(SELECT count(DISTINCT model) FROM outcomes WHERE dataset = $d)",
            {"d": dataset},
        ).fetchone()
    assert row is not None
    return row


def test_bundled_dir_holds_each_dataset_with_license_and_readme() -> None:
    root = bundled_dir()
    for name in BUNDLED:
        for file in ("outcomes.parquet", "models.json", "README.md", "LICENSE"):
            assert (root / name / file).is_file(), f"{name}/{file}"


@pytest.mark.parametrize("name", list(BUNDLED))
def test_import_counts_match_the_files(bundled_store: Store, name: str) -> None:
    frame = pd.read_parquet(bundled_dir() / name / "outcomes.parquet")
    assert counts(bundled_store, name) == (
        frame["item_id"].nunique(),
        len(frame),
        frame["model"].nunique(),
    )


def test_counts_match_the_upstream_sources(bundled_store: Store) -> None:
    # LLMRouter: 5,608 train + 500 test questions, 119 in both (kept in test only), 9 models.
    assert counts(bundled_store, "llmrouter") == (5608 + 500 - 119, (5608 + 500 - 119) * 9, 9)
    # RouterArena sub_10: 809 queries x 2 models.
    assert counts(bundled_store, "routerarena") == (809, 1618, 2)
    with bundled_store.connect(read_only=True) as con:
        splits = con.execute(
            "SELECT split, count(*) FROM items WHERE dataset = 'llmrouter' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        prices = con.execute(
            "SELECT name, input_cost_per_token FROM models WHERE name = 'gemma-2-9b-it'"
        ).fetchall()
    assert splits == [("test", 500), ("train", 5489)]
    assert prices == [("gemma-2-9b-it", 1e-07)]


@pytest.mark.skipif(not SOURCES.is_dir(), reason="the upstream copies in ../shared/data are absent")
def test_counts_match_the_source_files_themselves(bundled_store: Store) -> None:
    llmrouter = SOURCES / "llmrouter" / "dcrouter_preprocessed"
    train = {r["question"] for r in json.loads((llmrouter / "train.json").read_text())}
    test = {r["question"] for r in json.loads((llmrouter / "test.json").read_text())}
    assert counts(bundled_store, "llmrouter")[0] == len(train | test)
    arena = SOURCES / "routerarena" / "cached_results"
    lines = sum(len(f.read_text().strip().split("\n")) for f in arena.glob("*.jsonl"))
    assert counts(bundled_store, "routerarena")[1] == lines


def test_import_bundled_is_idempotent(bundled_store: Store) -> None:
    def content() -> dict[str, list[tuple[object, ...]]]:
        snap = snapshot(bundled_store)
        return {t: snap[t] for t in ("items", "outcomes", "models")}

    before = content()
    summaries = import_bundled(bundled_store)
    assert [s.outcomes_inserted + s.outcomes_updated for s in summaries] == [0, 0]
    assert content() == before


@pytest.mark.slow
def test_the_wheel_carries_the_bundled_data(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("tradeoff-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLED:
        for file in ("outcomes.parquet", "models.json", "README.md", "LICENSE"):
            assert f"tradeoff/evals/bundled_datasets/{name}/{file}" in names
    assert "tradeoff/evals/bundled.py" in names
    assert not any(n.startswith("datasets/") for n in names)  # never a top-level `datasets`
    # Installed from the wheel (first on sys.path, ahead of the editable checkout), the
    # package finds its data inside itself.
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    found = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from tradeoff.evals.bundled import bundled_dir; print(bundled_dir())", str(site)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == site / "tradeoff" / "evals" / "bundled_datasets"
