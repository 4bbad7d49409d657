"""Stored policies are first-class: versions, NAME / NAME@VERSION wherever a file works,
`tradeoff policies`, `tradeoff rollback`, and the guarded promotion test."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

import tradeoff
from tests.policies.synthetic import build_store, specialist_store
from tradeoff.evals.migrations import MIGRATIONS
from tradeoff.evals.store import Store, open_store
from tradeoff.policies.artifact import PolicyArtifact, store_artifact
from tradeoff.policies.data import load_outcomes
from tradeoff.policies.families.base import create_policy
from tradeoff.policies.loop.promote import MIN_PAIRS, promotion_test
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import history, resolve, serving


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = tradeoff.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "v.duckdb"
    specialist_store(path, n=120)
    return str(path)


def test_fit_names_the_version_and_stored_names_work_everywhere(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit = [
        "fit",
        "--dataset",
        "synth",
        "--require",
        "accuracy >= 85% of baseline",
        "--baseline",
        "strong",
        "--trials",
        "15",
        "--name",
        "desk",
        "--db",
        db,
    ]
    out_file = tmp_path / "desk.json"
    code, out, _ = run(capsys, *fit, "--out", str(out_file))
    assert code == 0
    assert "policy desk version 1 written to" in out and "--policy desk`" in out
    assert json.loads(out_file.read_text())["policy_version"] == 1
    assert json.loads(out_file.read_text())["version"] == 1  # the file format's version
    code, out, _ = run(capsys, *fit, "--seed", "1")
    assert code == 0 and "policy desk version 2 " in out

    store = open_store(db)
    assert serving(store, "desk").version == 2  # fit promotes what it stores
    assert resolve(store, "desk@1").artifact.policy_version == 1
    assert [(r.version, r.state) for r in history(store, "desk")] == [
        (1, "retired"),
        (2, "serving"),
    ]

    code, out, _ = run(capsys, "replay", "--policy", "desk@1", "--db", db, "--json")
    assert code == 0 and json.loads(out)["policy"] == "desk"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "x", "prompt": "q", "task": "A"}) + "\n")
    code, out, _ = run(capsys, "route", "--policy", "desk", "--input", str(prompts), "--db", db)
    assert code == 0 and out.startswith("x\t")

    code, out, _ = run(capsys, "policies", "--db", db)
    assert code == 0 and "desk" in out and "serving" in out and "retired" in out
    code, out, _ = run(capsys, "rollback", "desk", "--db", db)
    assert code == 0 and "version 2 rolled back; version 1 serves again" in out
    assert serving(store, "desk").version == 1
    assert [r.state for r in history(store, "desk")] == ["serving", "rolled_back"]
    code, out, _ = run(capsys, "rollback", "desk", "--to", "2", "--db", db)
    assert code == 0 and serving(store, "desk").version == 2


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["replay", "--policy", "ghost"], "no stored policy 'ghost'"),
        (["replay", "--policy", "ghost.json"], "policy file ghost.json not found"),
        (["route", "--policy", "desk@9", "--input", "x.jsonl"], "has versions 1-1, not 9"),
        (["rollback", "desk"], "no earlier serving version"),
        (["rollback", "desk", "--to", "5"], "has no version 5"),
        (["rollback", "ghost"], "no version of policy 'ghost' is serving"),
        (["refit", "--policy", "ghost"], "no stored policy 'ghost'"),
        (["status", "ghost"], "no served policy ghost"),
    ],
)
def test_mistakes_are_one_line_errors(
    db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    needle: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    store_artifact(
        open_store(db),
        PolicyArtifact.from_policy("desk", create_policy("single", {"model": "cheap"})),
    )
    code, _out, err = run(capsys, *argv, "--db", db)
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_stores_from_before_versions_get_them(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    for name, sql in MIGRATIONS:
        if name.startswith("0030"):
            break
        con.execute(sql)
        con.execute("INSERT INTO migrations VALUES (?, current_timestamp)", [name])
    for i, stamp in enumerate(["2025-01-01", "2025-02-01"]):
        art = PolicyArtifact.from_policy(
            "old", create_policy("single", {"model": f"m{i}"}), created_at=stamp
        )
        con.execute(
            "INSERT INTO policies (policy_id, name, family, artifact, created_at) "
            "VALUES (?, 'old', 'single', ?, ?)",
            [art.policy_id, json.dumps(art.content()), stamp],
        )
    con.close()
    store = Store(path)
    assert "0030_loop" in store.migrate()
    assert [(r.version, r.state) for r in history(store, "old")] == [
        (1, "candidate"),
        (2, "serving"),
    ]
    assert resolve(store, "old").artifact.params == {"model": "m1"}


def test_the_promotion_test_rejects_a_candidate_that_loses_accuracy(tmp_path: Path) -> None:
    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "base" or i % 4 != 0)  # cheap matches the baseline 75% of the time

    build_store(
        tmp_path / "t.duckdb",
        dataset="traffic-x",
        tasks={"": 80},
        models={"cheap": 0.001, "base": 0.01},
        score=score,
    )
    held = load_outcomes(open_store(tmp_path / "t.duckdb"), "traffic-x")
    req = parse_requirement("accuracy >= 95% of baseline")
    cheap = create_policy("single", {"model": "cheap"})
    verdict = promotion_test(cheap, req, held, "base")
    assert not verdict.passed and "does not meet accuracy >= 95% of baseline" in verdict.reason
    assert verdict.metrics["accuracy_vs_baseline"] == pytest.approx(0.75)
    base = create_policy("single", {"model": "base"})
    assert promotion_test(base, req, held, "base").passed
    few = held.subset(np.arange(MIN_PAIRS - 1))
    assert not promotion_test(
        cheap, parse_requirement("accuracy >= 50% of baseline"), few, "base"
    ).passed
    assert promotion_test(base, req, few, "base").passed  # the baseline itself needs no sample


def test_the_promotion_test_holds_an_every_task_clause_on_each_task(tmp_path: Path) -> None:
    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        return float(model == "base" or task == "easy" or i % 2 == 0)  # cheap: half of "hard"

    build_store(
        tmp_path / "t.duckdb",
        dataset="traffic-x",
        tasks={"easy": 900, "hard": 100},
        models={"cheap": 0.001, "base": 0.01},
        score=score,
    )
    held = load_outcomes(open_store(tmp_path / "t.duckdb"), "traffic-x")
    cheap = create_policy("single", {"model": "cheap"})
    overall = parse_requirement("accuracy >= 90% of baseline")
    assert promotion_test(cheap, overall, held, "base").passed  # 95% on the mix
    each = parse_requirement("accuracy >= 90% of baseline on every task")
    verdict = promotion_test(cheap, each, held, "base")
    assert not verdict.passed and "on every task" in verdict.reason  # 50% on "hard"
    table = create_policy(
        "task_table", {"table": {"easy": "cheap", "hard": "base"}, "default": "base"}
    )
    assert promotion_test(table, each, held, "base").passed  # "hard" kept on the baseline
