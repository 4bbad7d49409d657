"""The `tradeoff` entry point: the command list, and one-line errors for CLI mistakes."""

from __future__ import annotations

import subprocess
import sys

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
