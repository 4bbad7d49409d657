"""Starting and stopping a vLLM OpenAI-compatible server as a subprocess.

The server runs with `<python> -m vllm.entrypoints.openai.api_server` rather than the `vllm`
script: the community CPU build lacks the metadata that script needs. The Python is the current
interpreter unless `--vllm-python` / `$TRADEOFF_VLLM_PYTHON` names another venv (vLLM pins its
own torch, so it usually lives apart from tradeoff's).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tradeoff.evals.local.errors import INSTALL_HINT, PortInUseError, VllmNotInstalledError
from tradeoff.evals.ports import http_url, port_is_free

VLLM_PYTHON_ENV = "TRADEOFF_VLLM_PYTHON"
ENTRYPOINT = "vllm.entrypoints.openai.api_server"


def vllm_python(explicit: str | None = None) -> str:
    """`--vllm-python` wins, then `$TRADEOFF_VLLM_PYTHON`, then this interpreter."""
    return explicit or os.environ.get(VLLM_PYTHON_ENV) or sys.executable


def build_command(
    python: str,
    model: str,
    *,
    port: int,
    host: str = "127.0.0.1",
    served_name: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv that starts vLLM's OpenAI server for `model` on host:port."""
    argv = [python, "-m", ENTRYPOINT, "--model", model, "--host", host, "--port", str(port)]
    if served_name:
        argv += ["--served-model-name", served_name]
    return argv + list(extra_args)


def check_vllm_installed(python: str) -> None:
    """Raise VllmNotInstalledError unless `python` exists and can find the vllm package.

    Only `find_spec`: importing vllm takes seconds (torch) and is the server's job.
    """
    if not Path(python).exists():
        raise VllmNotInstalledError(f"Python {python} for vLLM does not exist; {INSTALL_HINT}")
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"
    result = subprocess.run([python, "-c", probe], capture_output=True, timeout=60)
    if result.returncode != 0:
        raise VllmNotInstalledError(f"vLLM is not installed for {python}; {INSTALL_HINT}")


def check_port_free(host: str, port: int) -> None:
    """Raise PortInUseError if `port` cannot be bound on `host`."""
    if not port_is_free(host, port):
        raise PortInUseError(
            f"port {port} on {host} is already in use; pick another with --port, or "
            f"register the server already there with `tradeoff local attach "
            f"{http_url(host, port)}`"
        )


def tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    if not path.exists():
        return ""
    with path.open(errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip()


@dataclass
class VllmProcess:
    """A started server: its process, where it logs, and its base URL."""

    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str  # http://host:port (no /v1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the server's process group, then SIGKILL if it lingers, or at once on a
        second Ctrl-C (the user will not wait: the server must not outlive the command).

        vLLM spawns an engine core process; signalling the group stops it too.
        """
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout_s)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout_s)
        except ProcessLookupError:
            pass


def start_server(
    argv: Sequence[str],
    *,
    host: str,
    port: int,
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> VllmProcess:
    """Start the server in its own process group, its output going to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    # A server bound to every interface is reached (and registered) through loopback.
    reach = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return VllmProcess(process=process, log_path=log_path, base_url=http_url(reach, port))
