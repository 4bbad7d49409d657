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
    LOOKUP,
    PRICE,
    clumsy_rules,
    escalation_models,
    escalation_rules,
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
from tradeoff.evals.rounds import render_rounds
from tradeoff.evals.runner import EvalSpec, Runner, run_eval
from tradeoff.evals.store import Store


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream(rules=[*sloppy_rules(), *clumsy_rules(), *escalation_rules()]) as up:
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


def rounds_of(store: Store, model: str) -> list[tuple[Any, ...]]:
    """(item_id, round, called, passed, cost_usd, latency_ms, error) of the model's rounds."""
    with store.connect(read_only=True) as con:
        return con.execute(
            "SELECT item_id, round, called, passed, cost_usd, latency_ms, error "
            "FROM outcome_rounds WHERE model = ? ORDER BY item_id, round",
            [model],
        ).fetchall()


def test_every_round_is_recorded_and_the_outcome_is_their_sum(
    store_target: str, upstream: Upstream, tmp_path: Path
) -> None:
    store = Store(store_target)
    store.migrate()
    import_file(store, json_items(tmp_path / "items.jsonl", 3), "d", fmt="items")
    config = sloppy_models(tmp_path / "models.yaml", upstream.url)
    spec = EvalSpec(dataset="d", models=["sloppy", "sloppy:fix"], progress=False)
    run_eval(store, load_registry(config), spec)
    rounds = rounds_of(store, "sloppy:fix")
    assert [(r[1], r[2], r[3], r[6]) for r in rounds] == [
        (1, "sloppy:fix", False, None), (2, "sloppy:fix", True, None)
    ] * 3  # fmt: skip
    assert rounds_of(store, "sloppy") == []  # a plain model's outcome is its one call
    with store.connect(read_only=True) as con:
        outcomes = con.execute(
            "SELECT item_id, cost_usd, latency_ms, escalated FROM outcomes "
            "WHERE model = 'sloppy:fix' ORDER BY item_id"
        ).fetchall()
    for item_id, cost, latency, escalated in outcomes:
        mine = [r for r in rounds if r[0] == item_id]
        assert cost == pytest.approx(sum(r[4] for r in mine))
        assert latency >= sum(r[5] for r in mine)  # the loop's time: its rounds and checks
        assert escalated is None
    # Run again: the recorded outcomes are kept, and so are their rounds (not doubled).
    run_eval(store, load_registry(config), spec)
    assert rounds_of(store, "sloppy:fix") == rounds


def test_a_refine_variant_escalates_after_its_last_failed_round(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    import_file(store, json_items(tmp_path / "items.jsonl", 2), "d", fmt="items")
    config = escalation_models(tmp_path / "models.yaml", upstream.url, rounds=1)
    before = len(upstream.requests)
    spec = EvalSpec(dataset="d", models=["stubborn", "stubborn:fix"], progress=False)
    report = run_eval(store, load_registry(config), spec)
    (refined,) = report.summary["refine"]
    assert refined["pass_at_round"] == [0.0, 0.0, 1.0] and refined["escalated"] == 1.0
    assert "escalated" in render_rounds(report.summary["refine"]).splitlines()[1]
    asked = upstream.requests[before:]
    to_big = [r for r in asked if r["model"] == "big"]
    assert len(asked) == 2 + 2 * 3 and len(to_big) == 2  # 2 rounds of stubborn, then big
    # The escalation model is asked the item itself, not the failed conversation.
    assert all(len(r["messages"]) == 1 for r in to_big)
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT model, score, rounds, escalated, cost_usd, response FROM outcomes "
            "ORDER BY model, item_id"
        ).fetchall()
    assert [r[:4] for r in rows] == [
        ("stubborn", 0.0, None, None), ("stubborn", 0.0, None, None),
        ("stubborn:fix", 1.0, 3, "big"), ("stubborn:fix", 1.0, 3, "big"),
    ]  # fmt: skip
    assert rows[2][5].strip() == FIXED
    rounds = rounds_of(store, "stubborn:fix")
    assert [(r[1], r[2], r[3]) for r in rounds[:3]] == [
        (1, "stubborn:fix", False), (2, "stubborn:fix", False), (3, "big", True)
    ]  # fmt: skip
    # The escalation is priced at big's rate, and the outcome pays for all three rounds.
    last = upstream.requests[before:][-1]
    assert last["model"] == "big"
    assert rounds[2][4] > 5 * rounds[0][4]  # big's round is dearer per token
    assert rows[2][4] == pytest.approx(sum(r[4] for r in rounds[:3]))


def test_escalate_must_name_a_model_that_answers_once(tmp_path: Path) -> None:
    config = escalation_models(tmp_path / "models.yaml", "http://127.0.0.1:9/v1")
    text = config.read_text().replace("escalate: big", "escalate: giant")
    config.write_text(text)
    with pytest.raises(ConfigError, match="escalate names 'giant', which is not configured"):
        load_registry(config)
    config.write_text(text.replace("escalate: giant", "escalate: stubborn:fix"))
    with pytest.raises(ConfigError, match="escalate must name a model that answers once"):
        load_registry(config)


def test_a_tool_call_whose_arguments_fail_their_schema_is_sent_back(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    rows = [
        {"id": f"t{k}", "task": "tools", "prompt": f"weather in Paris? ({k})",
         "grader": "tool_calls", "metadata": {"tools": [LOOKUP]}}
        for k in range(2)
    ]  # fmt: skip
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(row) + "\n" for row in rows))
    import_file(store, items, "d", fmt="items")
    entry = model_entry("clumsy", upstream.url)
    entry["variants"] = [{"name": "fix", "refine": {"rounds": 2}}]
    config = write_models(tmp_path / "models.yaml", [entry])
    before = len(upstream.requests)
    spec = EvalSpec(dataset="d", models=["clumsy", "clumsy:fix"], progress=False)
    run_eval(store, load_registry(config), spec)
    assert len(upstream.requests) - before == 2 + 2 * 2
    with store.connect(read_only=True) as con:
        got = con.execute(
            "SELECT model, avg(score), min(rounds), max(rounds), min(response) FROM outcomes "
            "GROUP BY model ORDER BY model"
        ).fetchall()
    assert [g[:4] for g in got] == [("clumsy", 0.0, None, None), ("clumsy:fix", 1.0, 2, 2)]
    recorded = json.loads(got[1][4])  # a tool-call answer is recorded as its calls
    assert recorded["tool_calls"] == [{"name": "lookup", "arguments": '{"city": "Paris"}'}]
    repair = upstream.requests[-1]
    assert repair["tools"] == [LOOKUP]
    assert repair["messages"][-1]["content"].startswith(
        "Your answer failed: the arguments of 'lookup' do not fit its schema"
    )
    assert [r[3] for r in rounds_of(store, "clumsy:fix")] == [False, True, False, True]


def test_eval_prints_pass_at_k_and_the_cost_of_k_samples(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    calls: dict[str, int] = {}

    def flaky(body: dict[str, Any]) -> str:
        """Item 0 right on its second call only (1 of 3 samples), item 1 never."""
        prompt = body["messages"][-1]["content"]
        calls[prompt] = calls.get(prompt, 0) + 1
        return FIXED if prompt.endswith(" 0") and calls[prompt] == 2 else BROKEN

    upstream.rules.insert(0, Rule(model="flaky", reply=flaky))
    import_file(store, json_items(tmp_path / "items.jsonl", 2), "d", fmt="items")
    config = write_models(tmp_path / "models.yaml", [model_entry("flaky", upstream.url)])
    command = tradeoff_argv("eval", "--dataset", "d", "--models", "flaky", "--repeats", "3",
                            "--config", str(config), "--db", str(store), "--no-progress")  # fmt: skip
    env = {**os.environ, "TRADEOFF_TEST_KEY": "sk-refine"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index("best-of-k") :].splitlines()
    assert table[1].split() == ["model", "items", "pass@1", "pass@2", "pass@3", "$1x", "$2x", "$3x"]
    # Unbiased pass@k over the items: item 0 (1 of 3 right) 1/3, 2/3, 1; item 1 always 0.
    assert table[2].split()[:5] == ["flaky", "2", "16.7%", "33.3%", "50.0%"]
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT count(*), avg(cost_usd) FROM outcomes").fetchall()
    assert rows[0][0] == 6
    costs = [float(c) for c in table[2].split()[5:]]
    assert costs == pytest.approx([rows[0][1], 2 * rows[0][1], 3 * rows[0][1]], rel=1e-3)
    again = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True)
    best = json.loads(again.stdout)["summary"]["best_of_k"]
    assert best[0]["pass_at_k"] == pytest.approx([1 / 6, 1 / 3, 1 / 2])


def test_max_cost_reserves_the_escalation_too(store: Store, tmp_path: Path) -> None:
    import_file(store, json_items(tmp_path / "items.jsonl", 1), "d", fmt="items")
    config = escalation_models(tmp_path / "models.yaml", "http://127.0.0.1:9/v1", rounds=1)
    models = ["stubborn", "stubborn:fix", "big"]
    runner = Runner(store, load_registry(config), EvalSpec(dataset="d", models=models))
    runner.budget = Budget(1.0)
    each = {job.model: runner._estimate(job) for job in runner.jobs}
    assert each["stubborn:fix"] == pytest.approx(2 * each["stubborn"] + each["big"])


def test_an_errored_outcome_answered_again_gets_its_new_rounds(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.rules.insert(0, Rule(model="shaky", status=500, fail_times=2, reply=FIXED))
    import_file(store, json_items(tmp_path / "items.jsonl", 1), "d", fmt="items")
    entry = model_entry("shaky", upstream.url)
    entry["variants"] = [{"name": "fix", "refine": {"rounds": 1}}]
    config = write_models(tmp_path / "models.yaml", [entry])
    spec = EvalSpec(dataset="d", models=["shaky:fix"], progress=False, max_retries=0)
    run_eval(store, load_registry(config), spec)
    (first,) = rounds_of(store, "shaky:fix")  # the call failed: the loop stopped there
    assert first[1:4] == (1, "shaky:fix", False) and "500" in first[6]
    run_eval(store, load_registry(config), spec)  # fails once more, recorded in its place
    run_eval(store, load_registry(config), spec)  # answers: the error's rounds are replaced
    assert [(*r[1:4], r[6]) for r in rounds_of(store, "shaky:fix")] == [
        (1, "shaky:fix", True, None)
    ]
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT score, error, rounds FROM outcomes").fetchall() == [
            (1.0, None, 1)
        ]
