"""SIGTERM and SIGHUP stop a command the way Ctrl-C does: what it started goes down with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Spawn
from tests.evals.runner_fixtures import add_items, model_entry, write_models
from tests.support.processes import pids_in, tradeoff_argv
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.stopping import Terminated, stop_on_signals
from tradeoff.evals.store import Store

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-stop-4242"


def test_the_block_catches_sigterm_and_leaves_an_ignored_sighup_ignored() -> None:
    before_term = signal.getsignal(signal.SIGTERM)
    before_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stop_on_signals():
            assert callable(signal.getsignal(signal.SIGTERM))
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is before_term
    finally:
        signal.signal(signal.SIGHUP, before_hup)
    assert Terminated(signal.SIGTERM).exit_code == 143


def test_only_the_first_signal_interrupts_the_cleanup(spawn: Spawn) -> None:
    # In a child: a signal that is not caught would end the test run itself.
    code = (
        "import os, signal, time\n"
        "from tradeoff.evals.stopping import Terminated, stop_on_signals\n"
        "with stop_on_signals():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(5)\n"
        "    except Terminated as exc:\n"
        "        os.kill(os.getpid(), signal.SIGHUP)  # a second signal during the cleanup\n"
        "        time.sleep(0.2)\n"
        "        print('cleaned up after', exc, flush=True)\n"
    )
    child = spawn([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 0 and out == "cleaned up after stopped by SIGTERM\n"


@pytest.mark.slow
def test_sigterm_stops_an_eval_and_its_sandboxed_code(
    tmp_path: Path, store: Store, spawn: Spawn
) -> None:
    # The item's tests sleep: the code grader's sandbox runs while the eval is stopped.
    add_items(store, "code", [
        {"item_id": "c1", "prompt": "set x", "reference": "import time\ntime.sleep(60)",
         "grader": "code"},
    ])  # fmt: skip
    scratch = tmp_path / "scratch"  # the sandbox's working directories go here
    scratch.mkdir()
    with Upstream([Rule(reply="x = 1")]) as up:
        config = write_models(tmp_path / "models.yaml", [model_entry("coder", up.url)])
        env = {**os.environ, "TRADEOFF_TEST_KEY": KEY, "TMPDIR": str(scratch)}
        argv = tradeoff_argv("eval", "--dataset", "code", "--models", "coder", "--config",
                             str(config), "--db", str(store.path), "--no-progress")  # fmt: skip
        proc = spawn(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not pids_in(scratch):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sandbox never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "rerun the same command to resume" in err and "stopped by SIGTERM" in err
    deadline = time.monotonic() + 5
    while pids_in(scratch) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids_in(scratch) == []  # the sandboxed program went down with the eval
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
