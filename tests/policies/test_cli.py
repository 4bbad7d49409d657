"""The commands in-process through `tradeoff.main`, on real DuckDB files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tradeoff
from tests.policies.synthetic import specialist_store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cli") / "s.duckdb"
    specialist_store(path)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = tradeoff.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_replay_route(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(tmp_path / "policy.json")
    fit = ["fit", "--dataset", "synth", "--require", "accuracy >= 85% of baseline"]
    code, out, _ = run(
        capsys, *fit, "--baseline", "strong", "--trials", "20", "--out", policy, "--db", db
    )
    assert code == 0
    assert (
        out.count("less cost, on ") == 1  # the sentence once (its acceptance says "keeps" too)
        and "we are " in out
        and "% confident it keeps at least " in out
        and "held-out requests; accepted" in out
    )
    # A seeded hash split: the held-out task mix is the training one up to noise (`fit.mix`).
    assert "promise tested on: recorded task mix" in out and "held-out task mix" not in out
    assert "Optuna trials in each of 5 fold studies" in out

    code, out, _ = run(capsys, *fit, "--baseline", "strong", "--trials", "20", "--db", db, "--json")
    fitted = json.loads(out)
    for key in ("policy", "family", "dataset", "split", "n", "accuracy", "accuracy_ci",
                "cost_per_request_usd", "baseline", "savings_vs_baseline", "reliability",
                "p95_latency_ms", "models_used"):  # fmt: skip
        assert key in fitted
    assert fitted["baseline"]["model"] == "strong"

    code, out, _ = run(capsys, "replay", "--policy", policy, "--db", db, "--json")
    replayed = json.loads(out)
    assert code == 0
    # The replay reproduces the fit's held-out figures on the same items.
    for key in ("n", "accuracy", "accuracy_ci", "cost_per_request_usd", "savings_vs_baseline"):
        assert replayed[key] == fitted[key]

    prompts = tmp_path / "prompts.jsonl"
    lines = [
        {"id": "a1", "prompt": "q", "task": "A"},
        {"messages": [{"role": "user", "content": "q"}], "task": "B"},
    ]
    prompts.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    code, out, _ = run(capsys, "route", "--policy", policy, "--input", str(prompts), "--json")
    decisions = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [d["models"] for d in decisions] == [["cheap"], ["strong"]]
    assert decisions[0]["id"] == "a1"


def test_replay_reuses_the_fit_seed(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = str(tmp_path / "policy.json")
    fit = ["fit", "--dataset", "synth", "--require", "accuracy >= 85% of baseline"]
    fit += ["--seed", "3", "--baseline", "strong", "--trials", "20", "--out", policy]
    code, out, _ = run(capsys, *fit, "--db", db, "--json")
    fitted = json.loads(out)
    assert code == 0
    code, out, _ = run(capsys, "replay", "--policy", policy, "--db", db, "--json")
    replayed = json.loads(out)
    assert code == 0
    # Without --seed the bootstrap is the fit's own, so the intervals match too.
    for key in ("n", "accuracy_ci", "cost_ci", "savings_ci", "accuracy_vs_baseline_ci"):
        assert replayed[key] == fitted[key]


def test_frontier(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "frontier", "--dataset", "synth", "--db", db, "--json")
    doc = json.loads(out)
    kinds = {p["kind"] for p in doc["points"]}
    assert code == 0 and kinds == {"single", "policy", "oracle"}
    pareto = [p for p in doc["points"] if p["pareto"]]
    assert any(p["name"] == "cheap" for p in pareto)
    assert not any(p["kind"] == "oracle" and p["pareto"] for p in doc["points"])
    code, out, _ = run(capsys, "frontier", "--dataset", "synth", "--db", db)
    assert code == 0 and "Pareto" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["fit", "--dataset", "synth", "--require", "accuracy >= lots"], 2, "at 'lots'"),
        (["fit", "--dataset", "synth", "--require", "accuracy >= 0.999"], 1, "no policy meets"),
        (["fit", "--dataset", "nope", "--require", "accuracy >= 0.5"], 2, "has no items"),
        (
            [
                "fit",
                "--dataset",
                "synth",
                "--require",
                "accuracy >= 0.5",
                "--minimize",
                "cost",
                "--maximize",
                "accuracy",
            ],
            2,
            "not both",
        ),
        (
            ["fit", "--dataset", "synth", "--require", "accuracy >= 0.5", "--traffic-mix", "Q=1"],
            2,
            "names task 'Q', which has no training items",
        ),
        (["replay", "--policy", "missing.json"], 2, "not found"),
        (["route", "--policy", "missing.json", "--input", "x.jsonl"], 2, "not found"),
    ],
)
def test_mistakes_are_one_line_and_non_zero(
    db: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, _, err = run(capsys, *argv, "--db", db) if argv[0] == "fit" else run(capsys, *argv)
    assert got == code
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")


def test_route_bad_input_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tradeoff.policies import PolicyArtifact, save_artifact
    from tradeoff.policies.families.single import SinglePolicy

    policy = save_artifact(PolicyArtifact.from_policy("p", SinglePolicy("m")), tmp_path / "p.json")
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nope": 1}\n')
    code, _, err = run(capsys, "route", "--policy", str(policy), "--input", str(bad))
    assert code == 2 and "in.jsonl:2" in err and "prompt" in err


@pytest.mark.slow
def test_demo_on_a_fresh_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "demo.duckdb")
    code, out, _ = run(capsys, "demo", "--db", db)
    assert code == 0
    # one sentence per bundled dataset: RouterArena's best model is also its cheapest
    assert out.count("The policy keeps ") == 1
    assert "The policy is the baseline itself, gemini-2.0-flash-001" in out
    assert "oracle (upper bound)" in out and "Next:" in out
    assert f"tradeoff frontier --dataset llmrouter --db {db}" in out
