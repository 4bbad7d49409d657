"""`tradeoff eval` as users run it: in-process for output and errors, as a subprocess for
kill -9 / resume and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Spawn
from tests.evals.runner_fixtures import add_items, model_entry, qa_items, write_models
from tests.support.processes import tradeoff_argv
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import Store

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-cli-secret-8080"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="wrong", reply="no idea"),
        Rule(model="slow", delay_s=0.15),
        Rule(model="crawl", delay_s=0.6),
        Rule(model="denied", status=401),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture
def setup(
    tmp_path: Path, store: Store, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", KEY)
    add_items(store, "qa", qa_items(5))
    config = write_models(
        tmp_path / "models.yaml",
        [model_entry(n, upstream.url) for n in ("right", "wrong", "slow", "crawl", "denied")],
    )
    return config, store.path


@pytest.mark.slow
def test_table_and_json(setup: tuple[Path, Path], run_cli: Callable[..., Any]) -> None:
    config, db = setup
    args = ["eval", "--dataset", "qa", "--models", "right,wrong", "--config", str(config)]
    code, out, err = run_cli(*args, "--db", str(db), "--repeats", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "task", "n"]
    assert lines[1].split()[:4] == ["right", "(all)", "10", "1.000"]
    assert "20 new outcomes" in out and "0 already recorded, 20 to call" in err
    assert "20/20" in err and "ETA" in err and "spend $" in err  # the progress line
    code, out, _ = run_cli(*args, "--db", str(db), "--repeats", "2", "--json")
    report = json.loads(out)
    assert code == 0 and report["recorded"] == 0 and report["skipped"] == 20
    assert {m["model"]: m["accuracy"] for m in report["summary"]["models"]} == {
        "right": 1.0,
        "wrong": 0.0,
    }
    assert KEY not in Path(db).read_bytes().decode("latin-1")


def test_a_model_whose_every_call_fails_gets_a_warning(
    setup: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    args = ["eval", "--dataset", "qa", "--models", "right,denied", "--config", str(config)]
    code, _, err = run_cli(*args, "--db", str(db), "--no-progress")
    assert code == 0, err  # errors are outcomes, recorded; the run itself completed
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "every call to denied failed" in warnings[0]
    assert "401" in warnings[0] and "models.yaml" in warnings[0]


def test_user_mistakes_are_one_line(
    setup: tuple[Path, Path], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, db = setup
    base = ["eval", "--config", str(config), "--db", str(db)]
    cases = [
        (["--dataset", "qa", "--models", "right,nope"], "'nope' is not in"),
        (["--dataset", "missing", "--models", "right"], "has no items"),
        (["--dataset", "qa", "--models", "right", "--grader", "fuzzy"], "unknown grader"),
        (["--dataset", "qa", "--models", "right", "--grader", "judge"], "--judge NAME"),
        (["--dataset", "qa", "--models", "right,right"], "twice"),
    ]
    for extra, expected in cases:
        code, _, err = run_cli(*base, *extra)
        assert code != 0 and expected in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.delenv("TRADEOFF_TEST_KEY")
    code, _, err = run_cli(*base, "--dataset", "qa", "--models", "right")
    assert code == 1 and err.startswith("error:") and "TRADEOFF_TEST_KEY" in err
    assert KEY not in err and len(err.strip().splitlines()) == 1


def test_max_cost_stops_with_a_message(
    setup: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    code, out, err = run_cli(
        "eval", "--dataset", "qa", "--models", "right", "--config", str(config), "--db",
        str(db), "--max-cost", "0.00002", "--max-tokens", "10", "--concurrency", "1",
    )  # fmt: skip
    assert code == 3 and "--max-cost $2e-05" in err and "budget_exhausted" in out


def test_max_cost_near_the_limit_waits_for_room_instead_of_stopping(
    setup: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    # Without --max-tokens a call reserves 1,024 answer tokens (about $0.001 here) while it
    # costs about $0.000005: 4 reservations fill $0.005, and the 20 calls cost $0.0001.
    config, db = setup
    code, out, err = run_cli(
        "eval", "--dataset", "qa", "--models", "right", "--config", str(config), "--db",
        str(db), "--max-cost", "0.005", "--repeats", "4", "--concurrency", "16", "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0, err
    assert report["status"] == "completed" and report["recorded"] == 20
    assert 0 < report["spend_usd"] <= 0.005


def test_max_cost_stopping_says_what_was_spent_and_what_the_next_call_needs(
    setup: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    code, out, _ = run_cli(
        "eval", "--dataset", "qa", "--models", "right", "--config", str(config), "--db",
        str(db), "--max-cost", "0.00002", "--max-tokens", "10", "--concurrency", "4", "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 3 and report["status"] == "budget_exhausted"
    spent = report["spend_usd"]
    assert 0 < spent <= 0.00002
    message = report["message"]
    assert f"spent ${spent:.6f} of --max-cost $2e-05" in message, message
    needs = float(message.split("the next call (right) needs up to $")[1].split()[0])
    left = float(message.split(" is left")[0].rsplit("$", 1)[1])
    assert left == pytest.approx(0.00002 - spent, abs=1e-6) and needs > left


def test_models_counts_the_outcomes_eval_recorded(
    setup: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    args = ["--config", str(config), "--db", str(db)]
    code, _, err = run_cli("eval", "--dataset", "qa", "--models", "right,wrong", *args)
    assert code == 0, err
    code, out, err = run_cli("models", *args, "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert (rows["right"]["outcomes"], rows["right"]["datasets"]) == (5, 1)
    assert (rows["right"]["mean_score"], rows["wrong"]["mean_score"]) == (1.0, 0.0)
    assert rows["slow"]["outcomes"] == 0 and rows["right"]["configured"]


def _start(
    spawn: Spawn, config: Path, db: Path, *extra: str, models: str = "slow,right"
) -> subprocess.Popen[str]:
    command = tradeoff_argv("eval", "--dataset", "qa", "--models", models, "--repeats", "2",
                            "--concurrency", "3", "--config", str(config), "--db", str(db),
                            *extra)  # fmt: skip
    env = {**os.environ, "TRADEOFF_TEST_KEY": KEY}
    return spawn(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _count(db: Path, sql: str = "SELECT count(*) FROM outcomes") -> int:
    with Store(db).connect(read_only=True) as con:
        row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _wait_for_outcomes(proc: subprocess.Popen[str], db: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    while _count(db) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no outcomes recorded in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_9_then_resume_has_no_duplicates_and_no_losses(
    setup: tuple[Path, Path], upstream: Upstream, spawn: Spawn
) -> None:
    config, db = setup
    add_items(Store(db), "qa", [dict(i, item_id=f"z{i['item_id']}") for i in qa_items(10)])
    total = 15 * 2 * 2
    # `crawl` (0.6 s a call) keeps the run going for seconds, so the kill lands midway even on
    # a loaded machine where polling the store is slow.
    models = "slow,crawl"
    proc = _start(spawn, config, db, models=models)
    _wait_for_outcomes(proc, db, 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)  # let requests already on the wire reach the stand-in
    recorded = _count(db)
    names = ("openai/slow", "openai/crawl", "slow", "crawl")
    calls = sum(upstream.model_counts[m] for m in names)
    assert 0 < recorded < total

    resumed = _start(spawn, config, db, "--json", models=models)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    report = json.loads(out)
    assert report["skipped"] == recorded and report["recorded"] == total - recorded
    keys = "dataset, item_id, model, params_hash, sample"
    assert _count(db) == total
    assert _count(db, f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM outcomes)") == total
    assert _count(db, "SELECT count(*) FROM outcomes WHERE error IS NOT NULL") == 0
    after = sum(upstream.model_counts[m] for m in names)
    assert after - calls == total - recorded  # exactly the missing ones were called
    with Store(db).connect(read_only=True) as con:
        runs = con.execute("SELECT status, n_outcomes FROM runs ORDER BY started_at").fetchall()
    # The killed run's row was closed by the next eval; its count is what it had committed.
    assert runs == [("killed", recorded), ("completed", total - recorded)]


@pytest.mark.slow
def test_ctrl_c_flushes_and_marks_the_run_interrupted(
    setup: tuple[Path, Path], spawn: Spawn
) -> None:
    config, db = setup
    proc = _start(spawn, config, db, "--concurrency", "1", models="crawl")
    _wait_for_outcomes(proc, db, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command to resume" in err
    with Store(db).connect(read_only=True) as con:
        run = con.execute("SELECT run_id, status, n_outcomes FROM runs").fetchone()
        assert run is not None and run[1] == "interrupted"
        mine = con.execute("SELECT count(*) FROM outcomes WHERE run_id = ?", [run[0]]).fetchone()
    assert mine is not None and run[2] == mine[0] > 0 and mine[0] < 10


def test_registering_the_evals_commands_imports_no_heavy_library() -> None:
    # `tradeoff --help` registers them; DuckDB, pandas, Arrow and litellm load when one runs.
    code = (
        "import sys, click; from tradeoff.evals import cli, eval_cli; "
        "[m.register(click.Group()) for m in (cli, eval_cli)]; "
        "print(sorted({'duckdb', 'pandas', 'pyarrow', 'litellm'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
