"""The sandbox: code that loops, hogs memory or reaches the network fails cleanly, with a reason."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tradeoff.evals.sandbox import run_python


def test_passing_and_failing_programs() -> None:
    ok = run_python("assert sum([1, 2]) == 3\nprint('fine')")
    assert ok.passed and ok.stdout.strip() == "fine"
    bad = run_python("assert 1 == 2, 'one is not two'")
    assert not bad.passed and bad.reason == "AssertionError: one is not two"


def test_infinite_loop_is_killed_at_the_time_limit() -> None:
    start = time.monotonic()
    result = run_python("while True:\n    pass", timeout_s=1.0)
    assert not result.passed and result.reason == "timed out after 1s"
    assert time.monotonic() - start < 5


def test_sleeping_child_processes_die_with_it() -> None:
    result = run_python("import time\ntime.sleep(60)", timeout_s=0.5)
    assert not result.passed and "timed out" in result.reason


def test_memory_hog_hits_the_memory_limit() -> None:
    result = run_python(
        "blocks = []\nwhile True:\n    blocks.append(bytearray(50_000_000))", memory_mb=256
    )
    assert not result.passed and result.reason == "memory limit exceeded (256 MB)"


@pytest.mark.slow
def test_network_is_blocked() -> None:
    # A real listener on 127.0.0.1: the sandboxed code must not reach it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    reached: list[bool] = []

    def accept() -> None:
        server.settimeout(3)
        try:
            server.accept()
            reached.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
    result = run_python(code)
    thread.join()
    server.close()
    assert not result.passed and result.reason == "network access is blocked in the sandbox"
    assert not reached


def test_no_escape_through_subprocess_and_cwd_is_a_temp_dir() -> None:
    escaped = run_python("import os\nos.system('true')")
    assert not escaped.passed and "blocked" in escaped.reason
    where = run_python("import os\nprint(os.getcwd())")
    assert where.passed and "tradeoff-sandbox-" in where.stdout
