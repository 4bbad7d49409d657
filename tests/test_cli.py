"""The `tradeoff` entry point: the command list, and one-line errors for CLI mistakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tradeoff

COMMANDS = ["import", "eval", "fit", "frontier", "replay", "route", "serve", "dashboard", "demo"]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert tradeoff.main(["--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:")[1].split()
    assert set(COMMANDS) | {"models", "datasets", "local"} <= set(listed)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["import"], "Missing argument 'PATH'"),
        (["fit", "--dataset", "d"], "Missing option '--require'"),
        (["eval", "--dataset", "d", "--models", "m", "--repeats", "0"], "--repeats"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tradeoff.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and says in err
    assert "--help" in err  # says what to do next


def test_the_console_script_exits_non_zero_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, tradeoff; sys.exit(tradeoff.main())", "fit"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["import", "nope.csv", "--dataset", "d"], "input file nope.csv not found"),
        (["import", "nope.jsonl", "--dataset", "d", "--format", "items"], "nope.jsonl not found"),
        (["eval", "--dataset", "d", "--models", "m", "--config", "nope.yaml"], "nope.yaml not"),
        (["models", "--config", "nope.yaml"], "model registry nope.yaml not found"),
        (["replay", "--policy", "nope.json"], "policy file nope.json not found"),
        (["route", "--policy", "nope.json", "--input", "p.jsonl"], "nope.json not found"),
        (["route", "--policy", "p.json", "--input", "nope.jsonl"], "nope.jsonl not found"),
        (["serve", "--config", "nope.yaml"], "model registry nope.yaml not found"),
        (["serve", "--config", "m.yaml", "--policy", "nope.json"], "nope.json not found"),
        (["serve", "--config", "m.yaml", "--api-key-file", "nope.txt"], "nope.txt not found"),
        (["local", "calibrate", "m", "--config", "nope.yaml"], "nope.yaml not found"),
        (["models", "--config", "."], "model registry . is a folder, not a file"),
    ],
)
def test_a_missing_input_file_exits_2_in_every_command(
    argv: list[str],
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tradeoff.policies import PolicyArtifact, save_artifact
    from tradeoff.policies.families.single import SinglePolicy

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADEOFF_DB", str(tmp_path / "s.duckdb"))
    save_artifact(PolicyArtifact.from_policy("p", SinglePolicy("m")), tmp_path / "p.json")
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    (tmp_path / "m.yaml").write_text("model_list: []\n")
    assert tradeoff.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert tradeoff.main(["--version"]) == 0
    assert capsys.readouterr().out == f"tradeoff {version('tradeoff')}\n"
