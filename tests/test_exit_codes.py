"""One exit-code rule for every command (the README's table): a name that does not exist is a
usage mistake, exit 2, whichever command meets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evals.runner_fixtures import add_items, qa_items
from tradeoff import main
from tradeoff.evals.store import open_store

MODELS = """model_list:
  - model_name: m1
    litellm_params: {model: hosted_vllm/m1, api_base: "http://127.0.0.1:9/v1",
                     input_cost_per_token: 1.0e-06, output_cost_per_token: 2.0e-06}
"""


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.yaml").write_text(MODELS)
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    add_items(open_store(str(tmp_path / "db.duckdb")), "qa", qa_items(2))
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "ghost.jsonl", "--dataset", "x"],
        ["eval", "--dataset", "ghost", "--models", "m1"],
        ["eval", "--dataset", "qa", "--models", "ghost"],
        ["fit", "--dataset", "ghost", "--require", "accuracy >= 90% of baseline"],
        ["frontier", "--dataset", "ghost"],
        ["replay", "--policy", "ghost"],
        ["replay", "--policy", "ghost.json"],
        ["route", "--policy", "ghost", "--input", "in.jsonl"],
        ["refit", "--policy", "ghost"],
        ["status", "ghost"],
        ["rollback", "ghost"],
        ["serve", "--policy", "ghost"],
    ],
    ids=lambda argv: " ".join(argv[:3]),
)
def test_a_name_that_does_not_exist_is_a_usage_mistake(
    place: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--db", str(place / "db.duckdb")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


def test_a_store_that_does_not_exist_is_a_usage_mistake(
    place: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["frontier", "--dataset", "qa", "--db", str(place / "ghost.duckdb")]) == 2
    assert "no store at" in capsys.readouterr().err
