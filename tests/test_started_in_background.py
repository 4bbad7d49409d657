"""The suite passes however it is started: here the tests that send signals run in a pytest that
ignores SIGINT and SIGHUP, as `nohup`, `&` from a script or CI's background job start it, and
leave no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Spawn
from tests.support.processes import pids_with_env

ROOT = Path(__file__).resolve().parents[1]
MARK = "TRADEOFF_TEST_RUN"

# Every test that signals a process it started: Ctrl-C, SIGTERM and SIGHUP to each command
# that stops on them, and to the children those commands start.
SIGNAL_TESTS = [
    "tests/evals/test_eval_cli.py::test_ctrl_c_flushes_and_marks_the_run_interrupted",
    "tests/evals/test_stopping.py::test_sigterm_stops_an_eval_and_its_sandboxed_code",
    "tests/evals/local/test_cli.py::test_serve_in_the_foreground_stops_its_server_on_ctrl_c",
    "tests/evals/local/test_cli.py::test_serve_in_the_foreground_stops_its_server_on_sigterm",
    "tests/evals/local/test_cli.py::test_a_second_ctrl_c_kills_a_server_that_ignores_sigterm",
    "tests/router/test_serve_cli.py::test_sighup_reloads_and_sigterm_flushes_every_row",
    "tests/router/test_serve_cli.py::test_sigint_also_flushes_every_row",
    "tests/dashboard/test_cli.py::test_sigterm_stops_streamlit_too",
]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_signal_tests_pass_with_sigint_ignored_and_leave_nothing_behind(
    spawn: Spawn, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex  # every process the inner run starts inherits it
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not vllm",
            "--basetemp", str(tmp_path / "inner"), *SIGNAL_TESTS]  # fmt: skip
    inner = spawn(
        argv,
        ignore=(signal.SIGINT, signal.SIGHUP),
        cwd=ROOT,
        env={**os.environ, MARK: run},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = inner.communicate(timeout=600)
    assert inner.returncode == 0, out[-5000:]
    assert f"{len(SIGNAL_TESTS)} passed" in out, out[-5000:]
    deadline = time.monotonic() + 10
    while pids_with_env(MARK, run) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_with_env(MARK, run) == []
