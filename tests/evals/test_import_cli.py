"""`tradeoff import`, `tradeoff datasets`, `tradeoff models` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.evals.conftest import CliResult, snapshot
from tests.evals.test_importers import ROUTERBENCH_MODELS, write_long, write_routerbench_csv
from tradeoff.evals.store import Store, default_db, open_store

Cli = Callable[..., CliResult]


def test_import_routerbench_then_datasets_shows_the_counts(
    tmp_path: Path, run_cli: Cli, store_target: str
) -> None:
    db = store_target
    expected = write_routerbench_csv(tmp_path / "rb.csv")
    code, out, err = run_cli(
        "import", str(tmp_path / "rb.csv"), "--dataset", "rb", "--format", "routerbench",
        "--db", db, "--split", "test",
    )  # fmt: skip
    assert code == 0, err
    assert f"items     {expected['items']} ({expected['items']} new)" in out
    assert f"{expected['outcomes']} inserted, 0 updated, 0 unchanged" in out
    assert f"{expected['skipped']} empty scores skipped" in out
    assert "models    11:" in out

    code, out, _ = run_cli("datasets", "--db", db, "--json")
    assert code == 0
    assert json.loads(out) == [
        {
            "dataset": "rb",
            "items": expected["items"],
            "outcomes": expected["outcomes"],
            "models": 11,
            "tasks": 4,
            "license": None,
            "splits": {"test": expected["items"]},
        }
    ]
    code, out, _ = run_cli("datasets", "--db", db)
    where, header, row = out.splitlines()
    assert where == f"store: {db}"
    assert header.split() == ["dataset", "items", "outcomes", "models", "tasks", "splits"]
    assert row.split() == ["rb", str(expected["items"]), str(expected["outcomes"]), "11", "4",
                           f"test:{expected['items']}"]  # fmt: skip


def test_import_json_summary_and_reimport(tmp_path: Path, run_cli: Cli, store_target: str) -> None:
    db = store_target
    path = str(write_long(tmp_path / "long.jsonl"))
    first = json.loads(run_cli("import", path, "--dataset", "d", "--db", db, "--json")[1])
    second = json.loads(run_cli("import", path, "--dataset", "d", "--db", db, "--json")[1])
    assert (first["outcomes_inserted"], first["skipped_empty_scores"]) == (3, 1)
    assert (second["outcomes_inserted"], second["outcomes_unchanged"]) == (0, 3)
    assert first["models"] == ["large", "small"] and first["format"] == "long"
    before = snapshot(Store(db))
    assert len(before["outcomes"]) == 3 and len(before["runs"]) == 2
    run_cli("import", path, "--dataset", "d", "--db", db, "--json")
    after = snapshot(Store(db))
    for table in ("items", "outcomes", "models"):  # a third import changes none of these rows
        assert after[table] == before[table], table


def test_a_malformed_file_is_one_line_and_a_nonzero_exit(tmp_path: Path, run_cli: Cli) -> None:
    db = tmp_path / "t.duckdb"
    run_cli("import", str(write_long(tmp_path / "good.csv")), "--dataset", "d", "--db", str(db))
    before = snapshot(Store(db))
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,task,prompt,model,score,cost_usd\na,t,p,m,1,0.1\nb,t,p,m,1.5,0.1\n")
    code, out, err = run_cli("import", str(bad), "--dataset", "d", "--db", str(db))
    assert code == 1
    assert err == f"error: {bad}:3: score: 1.5 is outside [0, 1]\n"
    assert out == ""
    assert snapshot(Store(db)) == before

    code, _, err = run_cli(
        "import", str(bad), "--dataset", "d", "--format", "wide", "--db", str(db)
    )
    assert code == 2 and err.count("\n") == 1 and "'wide' is not one of" in err
    code, _, err = run_cli("import", str(tmp_path / "nope.csv"), "--dataset", "d", "--db", str(db))
    assert (
        code == 2
        and err == f"error: input file {tmp_path / 'nope.csv'} not found; check the path\n"
    )


def test_models_lists_store_and_config(tmp_path: Path, run_cli: Cli) -> None:
    db = str(tmp_path / "t.duckdb")
    write_routerbench_csv(tmp_path / "rb.csv", blanks=0)
    run_cli("import", str(tmp_path / "rb.csv"), "--dataset", "rb", "--format", "routerbench",
            "--db", db)  # fmt: skip
    config = tmp_path / "models.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: claude-v2\n"
        "    litellm_params: {model: anthropic/claude-2, input_cost_per_token: 8.0e-6,"
        " output_cost_per_token: 2.4e-5}\n"
        "  - model_name: house-model\n"
        "    litellm_params: {model: hosted_vllm/house, api_base: 'http://127.0.0.1:9/v1'}\n"
        "    tier: local\n"
        "    gpu_hourly_usd: 2.0\n"
    )
    code, out, err = run_cli("models", "--db", db, "--config", str(config), "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == set(ROUTERBENCH_MODELS) | {"house-model"}
    claude = rows["claude-v2"]
    assert (claude["configured"], claude["tier"], claude["outcomes"]) == (True, "frontier", 24)
    assert (claude["input_usd_per_1m"], claude["output_usd_per_1m"]) == (8.0, 24.0)
    assert claude["price_source"] == "override"
    house = rows["house-model"]
    assert (house["outcomes"], house["tier"], house["price_source"]) == (0, "local", "unknown")
    assert rows["gpt-4-1106-preview"]["configured"] is False
    assert rows["gpt-4-1106-preview"]["outcomes"] == 24

    code, out, _ = run_cli("models", "--db", db, "--config", str(config))
    assert code == 0 and out.splitlines()[0] == f"store: {db}"
    assert "calibration" in out.splitlines()[1]
    assert len(out.splitlines()) == 2 + 12


def test_empty_store_says_what_to_do(
    tmp_path: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "empty.duckdb")
    open_store(db)
    assert (
        run_cli("datasets", "--db", db)[1]
        .splitlines()[1]
        .startswith("no datasets yet: run `tradeoff import")
    )
    monkeypatch.chdir(tmp_path)  # no ./models.yaml: the default registry is optional here
    monkeypatch.delenv("TRADEOFF_CONFIG", raising=False)
    assert run_cli("models", "--db", db)[1].splitlines()[1].startswith("no models yet")
    code, _, err = run_cli("models", "--db", db, "--config", str(tmp_path / "none.yaml"))
    assert code == 2 and "model registry" in err and "none.yaml not found" in err  # a typo


@pytest.mark.parametrize("command", ["datasets", "models", "frontier", "replay", "fit"])
def test_read_commands_never_create_a_store(
    tmp_path: Path, run_cli: Cli, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read on a missing store says which store it looked for and how to point at another
    (issue 15: `datasets` used to create an empty ./tradeoff.duckdb wherever it ran)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEOFF_CONFIG", raising=False)
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps({"version": 1, "name": "p", "family": "single", "params": {"model": "m"}})
    )
    args = {
        "frontier": ["--dataset", "d"],
        "replay": ["--policy", str(policy)],
        "fit": ["--dataset", "d", "--require", "accuracy >= 90% of baseline"],
    }.get(command, [])
    code, out, err = run_cli(command, *args)
    default = default_db()
    assert code == 2 and out == ""
    assert err == (
        f"error: no store at {default}; point at one with --db PATH_OR_URL or $TRADEOFF_DB, "
        "or create it with `tradeoff demo` or `tradeoff import`\n"
    )
    assert not default.exists() and list(tmp_path.iterdir()) == [policy]


def test_console_script_imports_in_a_subprocess(tmp_path: Path) -> None:
    path = write_long(tmp_path / "long.parquet")
    done = subprocess.run(
        [sys.executable, "-m", "tradeoff", "import", str(path), "--dataset", "d", "--json"],
        cwd=Path(__file__).resolve().parents[2],
        env={"TRADEOFF_DB": str(tmp_path / "env.duckdb"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcomes_inserted"] == 3
    assert (tmp_path / "env.duckdb").exists()


def test_models_shows_a_local_models_calibration_beside_api_prices(
    tmp_path: Path, run_cli: Cli
) -> None:
    from tests.evals.local.test_registration import CALIBRATION as calibration

    config = tmp_path / "models.yaml"
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": "tiny",
                        "litellm_params": {
                            "model": "hosted_vllm/tiny",
                            "api_base": "http://127.0.0.1:1/v1",
                            "input_cost_per_token": 7.3e-07,
                            "output_cost_per_token": 1.816e-05,
                        },
                        "tier": "local",
                        "gpu_hourly_usd": 2.0,
                        "calibration": calibration,
                    },
                    {
                        "model_name": "api",
                        "litellm_params": {
                            "model": "openai/x",
                            "input_cost_per_token": 1e-06,
                            "output_cost_per_token": 2e-06,
                        },
                    },
                ]
            }
        )
    )
    open_store(tmp_path / "s.duckdb")
    code, out, err = run_cli("models", "--db", str(tmp_path / "s.duckdb"), "--config", str(config))
    assert code == 0, err
    tiny = next(line for line in out.splitlines() if line.startswith("tiny"))
    assert "$2.00/GPU-h at 50% utilisation" in tiny and "$0.73 / $18.16 per 1M" in tiny
    api = next(line for line in out.splitlines() if line.startswith("api"))
    assert "GPU-h" not in api
