"""Child processes for tests: signal dispositions of their own, and never left behind.

A child inherits ignored signals: under `nohup`, `&` from a script or `trap "" INT`, a CLI the
suite starts would ignore the Ctrl-C a test sends it. `with_signals` starts the command through
a small Python shim that resets SIGINT, SIGTERM, SIGHUP and SIGQUIT to their defaults (and
unblocks every signal), then execs it: what the test sees no longer depends on how the suite
was started. (`preexec_fn` would do the same, but is unsafe in a parent with threads, and the
suite runs servers in threads.)

`spawn` starts a child that way in a process group of its own; the `spawn` fixture
(tests/conftest.py) stops every group it started when the test ends, failed or not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SHIM = """\
import os, signal, sys
ignore = {int(s) for s in sys.argv[1].split(",") if s}
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN if s in ignore else signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_SETMASK, [])
os.execvp(sys.argv[2], sys.argv[2:])
"""


def with_signals(argv: Sequence[str], ignore: Iterable[int] = ()) -> list[str]:
    """`argv` run with default signal dispositions, except those in `ignore` (ignored)."""
    return [sys.executable, "-c", SHIM, ",".join(str(int(s)) for s in ignore), *argv]


def tradeoff_argv(*args: str) -> list[str]:
    """The `tradeoff` command line, run by this interpreter."""
    return [sys.executable, "-m", "tradeoff", *args]


def spawn(
    argv: Sequence[str], *, ignore: Iterable[int] = (), **popen: Any
) -> subprocess.Popen[Any]:
    """Start `argv` with default signal dispositions, in a new session (its own group)."""
    return subprocess.Popen(with_signals(argv, ignore), start_new_session=True, **popen)


def stop_group(pgid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM a process group that is not a `spawn`ed child (a server a CLI left running),
    then SIGKILL what is left after `timeout_s`."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pgid)  # a zombie leader would keep the group "alive"
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _reap(pgid)


def stop(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """Stop a child started by `spawn` and whatever it started in its group; reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the leader, if it lingers, and what it left
    process.wait()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def pids_with_env(name: str, value: str) -> list[int]:
    """Live processes whose environment has NAME=VALUE (Linux /proc; [] elsewhere)."""
    marker = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            env = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in env.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def pids_in(folder: Path) -> list[int]:
    """Live processes whose working directory is inside `folder` (Linux /proc; [] elsewhere)."""
    root = folder.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cwd.is_relative_to(root) and state != "Z":
            found.append(int(entry.name))
    return found
