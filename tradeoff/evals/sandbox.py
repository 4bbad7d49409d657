"""Run untrusted Python (model-written code plus its tests) in a constrained subprocess.

Limits: wall-clock timeout (the whole process group is killed), CPU time and address space via
`resource.setrlimit`, no network, a fresh temporary directory as cwd, an empty environment.
No network is enforced twice: an audit hook installed before the code runs refuses socket
creation, subprocesses and `ctypes` loading; where unprivileged user namespaces work
(`unshare -rn`), the process also gets a network namespace with no interfaces.

This is isolation for honest mistakes and careless code, not a security boundary against a
determined attacker; run untrusted benchmarks in a container too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Runs first in the child: set limits, block network and escapes, run the program as __main__.
# (Limits are set here rather than in a preexec_fn, which is unsafe in a threaded parent.)
_BOOTSTRAP = """\
import resource
import sys

_cpu, _mem = int(sys.argv[1]), int(sys.argv[2]) << 20
resource.setrlimit(resource.RLIMIT_CPU, (_cpu, _cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (_mem, _mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

_BLOCKED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.fork",
            "os.spawn", "ctypes.")

def _guard(event, args):
    if event.startswith(_BLOCKED):
        if event.startswith("socket."):
            raise PermissionError("sandbox: network access is blocked")
        raise PermissionError(f"sandbox: {event} is blocked")

sys.addaudithook(_guard)
import runpy
runpy.run_path("program.py", run_name="__main__")
"""


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed program ended. `reason` is one short line when it did not pass."""

    passed: bool
    reason: str
    returncode: int | None
    stdout: str
    stderr: str


@cache
def _working_unshare() -> str | None:
    """The full path of `unshare` if `unshare -rn` works here (the child's PATH may lack it)."""
    exe = shutil.which("unshare")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if done.returncode == 0 else None


def _command(cpu_s: int, memory_mb: int) -> list[str]:
    # -I: isolated mode (no user site, no PYTHON* env, no cwd on sys.path beyond the script's).
    python = [sys.executable, "-I", "bootstrap.py", str(cpu_s), str(memory_mb)]
    unshare = _working_unshare()
    return [unshare, "-rn", *python] if unshare else python


def _reason(returncode: int, stderr: str, memory_mb: int) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    if "MemoryError" in stderr or returncode in (-signal.SIGSEGV, -signal.SIGABRT):
        return f"memory limit exceeded ({memory_mb} MB)"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "CPU time limit exceeded"
    if "sandbox: network access is blocked" in stderr or "Network is unreachable" in stderr:
        return "network access is blocked in the sandbox"
    return last[:300] or f"exited with status {returncode}"


def _prepare(code: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="tradeoff-sandbox-"))
    (workdir / "program.py").write_text(code)
    (workdir / "bootstrap.py").write_text(_BOOTSTRAP)
    return workdir


async def arun_python(code: str, *, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Run `code` as a script in the sandbox; passed = exit status 0 within the limits."""
    workdir = _prepare(code)
    cpu_s = max(1, int(timeout_s) + 1)
    try:
        proc = await asyncio.create_subprocess_exec(
            *_command(cpu_s, memory_mb),
            cwd=workdir,
            env={"PATH": os.defpath, "HOME": str(workdir), "PYTHONHASHSEED": "0"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so a kill takes its children too
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return SandboxResult(False, f"timed out after {timeout_s:g}s", None, "", "")
        except asyncio.CancelledError:
            _kill_group(proc.pid)
            raise
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        code_ = proc.returncode if proc.returncode is not None else -1
        if code_ == 0:
            return SandboxResult(True, "", 0, stdout, stderr)
        return SandboxResult(False, _reason(code_, stderr, memory_mb), code_, stdout, stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_python(code: str, *, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Blocking form of `arun_python` (not for use inside a running event loop)."""
    return asyncio.run(arun_python(code, timeout_s=timeout_s, memory_mb=memory_mb))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
