"""The throwaway PostgreSQL cluster the store tests use leaves nothing behind: not when stopped,
and not when the process that started it is killed outright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.postgres import ENABLE_HINT, Cluster, find_bin

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture
def bin_dir() -> Path:
    found = find_bin()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {ENABLE_HINT}")
        pytest.skip(ENABLE_HINT)
    return found


def test_stop_ends_the_server_and_removes_its_folder(bin_dir: Path) -> None:
    cluster = Cluster(bin_dir).start()
    server = cluster._server
    assert server is not None and _alive(server.pid)
    cluster.stop()
    assert not _alive(server.pid) and not cluster.root.exists()


OWNER = """
import sys, time
from pathlib import Path
from tests.support.postgres import Cluster
cluster = Cluster(Path(sys.argv[1])).start()
print(cluster._server.pid, cluster.root, flush=True)
time.sleep(600)
"""


def test_a_killed_owner_takes_its_server_down(bin_dir: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OWNER), str(bin_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    pid_text, root = owner.stdout.readline().split()
    pid = int(pid_text)
    assert _alive(pid)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the server outlived the process that started it"
    shutil.rmtree(root, ignore_errors=True)  # stop() never ran: the folder is ours to remove
