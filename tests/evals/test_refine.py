"""Generate, verify, refine (issue 26): `sloppy` breaks JSON on its first try and fixes it when
shown the error; `sloppy:fix` (a refine variant) is measured as a candidate of its own."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evals.runner_fixtures import (
    BROKEN,
    FIXED,
    PRICE,
    model_entry,
    sloppy_models,
    sloppy_rules,
    write_models,
)
from tests.support.processes import tradeoff_argv
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.budget import Budget
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.importers import import_file
from tradeoff.evals.registry import load_registry
from tradeoff.evals.runner import EvalSpec, Runner, run_eval
from tradeoff.evals.store import Store


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream(rules=sloppy_rules()) as up:
        yield up


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-refine")


def json_items(path: Path, n: int) -> Path:
    rows = [
        {"id": f"j{k}", "task": "json", "prompt": f"return json {k}", "grader": "json_valid",
         "metadata": {"response_format": {"type": "json_object"}}}
        for k in range(n)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_refine_variant_repairs_its_answer_and_pays_for_every_round(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    import_file(store, json_items(tmp_path / "items.jsonl", 4), "d", fmt="items")
    config = sloppy_models(tmp_path / "models.yaml", upstream.url)
    before = len(upstream.requests)
    spec = EvalSpec(dataset="d", models=["sloppy", "sloppy:fix"], progress=False)
    report = run_eval(store, load_registry(config), spec)
    assert report.recorded == 8
    assert len(upstream.requests) - before == 4 + 8  # the variant called twice per item
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT model, avg(score), avg(cost_usd), avg(prompt_tokens + completion_tokens), "
            "min(rounds), max(rounds), min(response) FROM outcomes GROUP BY model"
        ).fetchall()
    by_model = {r[0]: r[1:] for r in rows}
    plain, fixed = by_model["sloppy"], by_model["sloppy:fix"]
    assert plain[0] == 0.0 and fixed[0] == 1.0
    assert plain[3:5] == (None, None) and fixed[3:5] == (2, 2)
    assert fixed[5].strip() == FIXED and plain[5].strip() == BROKEN
    # The variant's cost covers both rounds: its tokens are the first round's plus the second's
    # (which resends the conversation with the broken answer and the failure message).
    assert fixed[1] == pytest.approx(PRICE * fixed[2]) and plain[1] == pytest.approx(
        PRICE * plain[2]
    )
    assert fixed[2] > 2 * plain[2] and fixed[1] > 2 * plain[1]
    repair = upstream.requests[-1]
    assert repair["response_format"] == {"type": "json_object"}
    assert repair["messages"][-2]["content"].strip() == BROKEN
    assert repair["messages"][-1]["content"].startswith("Your answer failed: not JSON")
    assert repair["messages"][-1]["content"].endswith("Fix it.")


def test_an_answer_that_passes_is_not_sent_back(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    import_file(store, json_items(tmp_path / "items.jsonl", 2), "d", fmt="items")
    entry = model_entry("tidy", upstream.url)
    upstream.set_rule(Rule(model="tidy", reply=FIXED))
    entry["variants"] = [{"name": "fix", "refine": {"rounds": 3}}]
    config = write_models(tmp_path / "models.yaml", [entry])
    before = len(upstream.requests)
    spec = EvalSpec(dataset="d", models=["tidy:fix"], progress=False)
    run_eval(store, load_registry(config), spec)
    assert len(upstream.requests) - before == 2
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT DISTINCT rounds, score FROM outcomes").fetchall() == [(1, 1.0)]


@pytest.mark.parametrize(
    ("variant", "says"),
    [
        ({"refine": {"rounds": 0}}, "refine.rounds must be a whole number from 1 to 10"),
        ({"refine": {"tries": 2}}, "refine must be a mapping"),
        ({"refine": {"rounds": 1}, "verifier": "exact"}, "needs a reference answer"),
        ({"refine": {"rounds": 1}, "verifier": "nope"}, "verifier"),
        ({"verifier": "json_valid"}, "verifier is a refine option"),
    ],
)
def test_bad_refine_settings_are_one_line_errors(
    tmp_path: Path, variant: dict[str, Any], says: str
) -> None:
    entry = model_entry("sloppy", "http://127.0.0.1:9/v1")
    entry["variants"] = [{"name": "fix", **variant}]
    with pytest.raises(ConfigError, match=says):
        load_registry(write_models(tmp_path / "models.yaml", [entry]))


def test_eval_prints_pass_at_round_for_refine_candidates(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    import_file(store, json_items(tmp_path / "items.jsonl", 3), "d", fmt="items")
    config = sloppy_models(tmp_path / "models.yaml", upstream.url)
    command = tradeoff_argv("eval", "--dataset", "d", "--models", "sloppy,sloppy:fix",
                            "--config", str(config), "--db", str(store), "--no-progress")  # fmt: skip
    env = {**os.environ, "TRADEOFF_TEST_KEY": "sk-refine"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index("refine candidates") :].splitlines()
    assert table[1].split()[:6] == ["model", "n", "pass@1", "pass@2", "rounds", "$/solved"]
    assert table[2].split()[:5] == ["sloppy:fix", "3", "0.0%", "100.0%", "2.00"]
    assert len(table) == 3 or not table[3].startswith("sloppy ")  # the plain model has no row


def test_code_that_fails_the_prompts_tests_is_repaired_with_a_named_verifier(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.set_rule(Rule(model="coder", reply="def add(a, b):\n    return a - b"))
    upstream.rules.insert(
        0,
        Rule(
            model="coder", contains="Your answer failed", reply="def add(a, b):\n    return a + b"
        ),
    )
    prompt = "Write add(a, b). Your code should pass these tests:\nassert add(1, 2) == 3"
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "c1", "task": "code", "prompt": prompt,
                                 "grader": "prompt_tests"}) + "\n")  # fmt: skip
    import_file(store, items, "d", fmt="items")
    entry = model_entry("coder", upstream.url)
    entry["variants"] = [{"name": "fix", "refine": {"rounds": 2}, "verifier": "prompt_tests"}]
    config = write_models(tmp_path / "models.yaml", [entry])
    spec = EvalSpec(dataset="d", models=["coder", "coder:fix"], progress=False)
    run_eval(store, load_registry(config), spec)
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT model, score, rounds FROM outcomes ORDER BY model").fetchall()
    assert rows == [("coder", 0.0, None), ("coder:fix", 1.0, 2)]


def test_max_cost_reserves_every_round_of_a_refine_candidate(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    import_file(store, json_items(tmp_path / "items.jsonl", 2), "d", fmt="items")
    config = sloppy_models(tmp_path / "models.yaml", upstream.url)
    registry = load_registry(config)
    runner = Runner(store, registry, EvalSpec(dataset="d", models=["sloppy"], max_cost_usd=1.0))
    runner.budget = Budget(1.0)
    one_call = runner._estimate(runner.jobs[0])
    # Room for one call of the plain model but not for the variant's three possible rounds.
    budget = 2 * one_call
    spec = EvalSpec(dataset="d", models=["sloppy:fix"], progress=False, max_cost_usd=budget)
    before = len(upstream.requests)
    report = run_eval(store, registry, spec)
    assert report.status == "budget_exhausted" and report.recorded == 0
    assert len(upstream.requests) == before
