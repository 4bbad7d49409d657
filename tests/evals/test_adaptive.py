"""`tradeoff eval --adaptive` against the upstream stand-in: three candidates (always right,
right half the time, always wrong), "accuracy >= 95% of baseline"; then `fit` on the result, a
rerun, kill -9 and resume, the live view and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evals.runner_fixtures import add_items, model_entry, qa_items, write_models
from tests.support.upstream import Rule, Upstream, last_user_text
from tradeoff.evals.store import Store

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = "accuracy >= 95% of baseline"
ITEMS = 200


def coin(body: dict[str, Any]) -> str:
    """Right on even-numbered questions, wrong on odd ones: right half the time, the same
    answer for the same item whenever it is asked (so a resumed race sees what it saw)."""
    prompt = last_user_text(body)
    return f"echo: {prompt}" if int(prompt.split()[-1]) % 2 == 0 else "no idea"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="wrong", reply="no idea"),
        Rule(model="coin", reply=coin),
        # The same three, slow, so a kill -9 lands mid-race.
        Rule(model="slow-right", delay_s=0.08),
        Rule(model="slow-coin", reply=coin, delay_s=0.08),
        Rule(model="slow-wrong", reply="no idea", delay_s=0.08),
    ]
    with Upstream(rules) as up:
        yield up


@pytest.fixture
def setup(
    tmp_path: Path, store: Store, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path]:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-adaptive")
    add_items(store, "qa", qa_items(ITEMS))
    names = ("right", "coin", "wrong", "slow-right", "slow-coin", "slow-wrong")
    config = write_models(tmp_path / "models.yaml", [model_entry(n, upstream.url) for n in names])
    return config, store.path


def race_args(config: Path, db: Path, prefix: str = "") -> list[str]:
    models = ",".join(f"{prefix}{m}" for m in ("right", "coin", "wrong"))
    return ["eval", "--dataset", "qa", "--models", models, "--adaptive", "--baseline",
            f"{prefix}right", "--require", REQUIRE, "--batch-items", "10", "--config",
            str(config), "--db", str(db)]  # fmt: skip


def calls_to(upstream: Upstream, *models: str) -> int:
    return sum(upstream.model_counts[m] for m in models)


def count(db: Path, sql: str, params: list[Any] | None = None) -> int:
    with Store(db).connect(read_only=True) as con:
        row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0


def test_the_wrong_candidate_is_dropped_early_and_a_later_fit_is_valid(
    setup: tuple[Path, Path], upstream: Upstream, run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    paid = calls_to(upstream, "right", "coin", "wrong")
    code, out, err = run_cli(*race_args(config, db), "--json")
    assert code == 0, err
    report = json.loads(out)
    dropped = {d["model"]: d for d in report["dropped"]}
    assert set(dropped) == {"wrong", "coin"}  # 50% cannot reach 95% of 100% either
    assert dropped["wrong"]["after_items"] <= 30  # early: within three rounds of ten
    assert dropped["wrong"]["after_items"] < dropped["coin"]["after_items"]
    for drop in dropped.values():
        assert drop["reason"].startswith(f"below the floor ({REQUIRE})")
    assert report["stop_reason"] == "decided: right left"
    assert report["calls_exhaustive"] == 3 * ITEMS
    assert report["calls"] <= 0.25 * report["calls_exhaustive"]
    assert report["cost_usd"] < 0.25 * report["cost_exhaustive_usd"]
    # Every paid call is an outcome the race used; none is recorded as a failure.
    assert calls_to(upstream, "right", "coin", "wrong") - paid == report["calls"]
    assert report["calls"] == report["recorded"]
    assert count(db, "SELECT count(*) FROM outcomes") == report["calls"]
    assert count(db, "SELECT count(*) FROM outcomes WHERE error IS NOT NULL") == 0
    by_model = {m["model"]: m for m in report["summary"]["models"]}
    assert by_model["wrong"]["n"] == dropped["wrong"]["after_items"]
    assert by_model["wrong"]["errors"] == 0
    unmeasured = {c["model"]: c["not_measured_items"] for c in report["candidates"]}
    assert unmeasured["wrong"] == ITEMS - dropped["wrong"]["after_items"]

    # The same command again: nothing new is called, the same decisions come out.
    before = calls_to(upstream, "right", "coin", "wrong")
    code, out, err = run_cli(*race_args(config, db), "--json")
    again = json.loads(out)
    assert code == 0 and again["recorded"] == 0 and again["dropped"] == report["dropped"]
    assert calls_to(upstream, "right", "coin", "wrong") == before

    code, out, err = run_cli("fit", "--dataset", "qa", "--require", REQUIRE, "--baseline",
                             "right", "--db", str(db), "--json")  # fmt: skip
    assert code == 0, err
    fit = json.loads(out)
    # `wrong` was measured on fewer items than the rest: left out, never routed to, not failed.
    assert "wrong" not in fit["singles"] and set(fit["models_used"]) <= {"right", "coin"}
    assert any("wrong was dropped by adaptive evaluation" in n for n in fit["notes"])
    assert fit["requirement_on_test"][REQUIRE]["holds"]
    assert fit["n"] >= 2 and fit["n_fit"] + fit["n"] <= ITEMS


def test_the_live_view_shows_intervals_narrowing_and_drops(
    setup: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    code, out, err = run_cli(*race_args(config, db))
    assert code == 0, err
    rounds = re.findall(r"round \d+: (\d+)/200 items; .*?right [\d.]+ \[([\d.]+), ([\d.]+)\]", err)
    widths = [float(high) - float(low) for _, low, high in rounds]
    assert len(widths) >= 3 and widths == sorted(widths, reverse=True) and widths[-1] < widths[0]
    assert re.search(r"^dropped wrong after 20 items: below the floor", err, re.M)
    assert "wrong 0.000 [0.000, 0.161] (dropped)" in err
    assert "adaptive: " in out and "of 600 calls" in out
    assert "wrong: 180 items not measured (not failures)" in out


def test_user_mistakes_are_one_line(setup: tuple[Path, Path], run_cli: Callable[..., Any]) -> None:
    config, db = setup
    base = ["eval", "--dataset", "qa", "--models", "right,coin", "--config", str(config),
            "--db", str(db)]  # fmt: skip
    cases = [
        (["--adaptive"], "--adaptive and --require go together"),
        (["--require", REQUIRE], "--adaptive and --require go together"),
        (["--baseline", "right"], "need --adaptive"),
        (["--adaptive", "--require", REQUIRE], "--baseline MODEL"),
        (["--adaptive", "--require", "accuracy >= lots"], "accuracy"),
        (["--adaptive", "--require", "p95_latency <= 2s"], "nothing to drop candidates by"),
        (["--adaptive", "--require", REQUIRE, "--baseline", "nope"], "'nope' is not in"),
    ]
    for extra, expected in cases:
        code, _, err = run_cli(*base, *extra)
        assert code != 0 and expected in err and len(err.strip().splitlines()) == 1, err
    assert count(db, "SELECT count(*) FROM outcomes") == 0


def _start(config: Path, db: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tradeoff", *race_args(config, db, "slow-"),
               "--concurrency", "3", "--json"]  # fmt: skip
    env = {**os.environ, "TRADEOFF_TEST_KEY": "sk-adaptive"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_kill_9_mid_race_then_resume_repeats_no_paid_call(
    setup: tuple[Path, Path], upstream: Upstream, run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    slow = ("slow-right", "slow-coin", "slow-wrong")
    proc = _start(config, db)
    deadline = time.monotonic() + 60
    # Mid-race: past the first round of 30 calls, well before the race is decided (~80 calls).
    while count(db, "SELECT count(*) FROM outcomes") < 35:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no outcomes recorded in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.3)  # let requests already on the wire reach the stand-in
    recorded = count(db, "SELECT count(*) FROM outcomes")
    paid = calls_to(upstream, *slow)

    resumed = _start(config, db)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    report = json.loads(out)
    total = count(db, "SELECT count(*) FROM outcomes")
    assert 0 < recorded < total
    keys = "dataset, item_id, model, params_hash, sample"
    assert count(db, f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM outcomes)") == total
    assert report["skipped"] == recorded and report["recorded"] == total - recorded
    # Exactly the outcomes missing after the kill were called: nothing recorded was paid twice.
    assert calls_to(upstream, *slow) - paid == total - recorded
    # The resumed race reached the decisions an uninterrupted one reaches.
    code, out, err = run_cli(*race_args(config, db), "--json")
    reference = json.loads(out)
    assert code == 0, err
    assert [(d["model"], d["after_items"]) for d in report["dropped"]] == [
        ("slow-" + d["model"], d["after_items"]) for d in reference["dropped"]
    ]
    assert report["calls"] == reference["calls"] == total
    with Store(db).connect(read_only=True) as con:
        runs = con.execute("SELECT status FROM runs ORDER BY started_at").fetchall()
    assert [r[0] for r in runs] == ["killed", "completed", "completed"]


def test_max_cost_stops_the_race_and_a_rerun_continues_it(
    setup: tuple[Path, Path], upstream: Upstream, run_cli: Callable[..., Any]
) -> None:
    config, db = setup
    paid = calls_to(upstream, "right", "coin", "wrong")
    args = [*race_args(config, db), "--max-tokens", "10", "--json"]
    code, out, err = run_cli(*args, "--max-cost", "0.0003")
    stopped = json.loads(out)
    assert code == 3 and stopped["status"] == "budget_exhausted" and "--max-cost" in err
    assert stopped["stop_reason"] == "budget_exhausted" and stopped["spend_usd"] <= 0.0003
    code, out, err = run_cli(*args)
    finished = json.loads(out)
    assert code == 0, err
    assert finished["skipped"] == stopped["recorded"] and finished["stop_reason"].startswith(
        "decided"
    )
    assert calls_to(upstream, "right", "coin", "wrong") - paid == finished["calls"]
