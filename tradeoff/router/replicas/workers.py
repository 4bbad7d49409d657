"""`tradeoff serve --workers N`: N proxy processes on one host, behind one listening socket.

The pre-fork model of gunicorn and `uvicorn --workers`: the supervisor (the `tradeoff serve`
process) binds the socket, checks the configuration once (a wrong file is one line before
anything listens), then starts N workers that inherit the socket and accept on it in turn (the
kernel hands each connection to one of them). Each worker is a full proxy with its own state:
its own spool files (router/log/spool.py), its own connections; through a PostgreSQL store they
share what replicas share (router/replicas/shared.py). On a DuckDB file the workers take turns
holding it, and `--keys` needs PostgreSQL (limits must be counted in one place).

The supervisor:
- forwards SIGTERM, SIGINT and SIGHUP to every worker (each then drains like a lone
  `tradeoff serve`), waits for them, and only then exits; a worker still running
  `--drain-timeout` + `STOP_GRACE_S` after the signal is killed;
- restarts a worker that dies (its unsettled spool rows are replayed by whichever process
  claims them first), unless workers keep dying within `QUICK_DEATH_S` of starting: after
  `MAX_QUICK_DEATHS` in a row it stops them all and exits non-zero;
- is watched by its workers: each asks the kernel for a SIGTERM when its parent dies
  (`PR_SET_PDEATHSIG`), so a supervisor killed with -9 leaves no worker behind.
Workers run in their own session, so a terminal's Ctrl-C reaches the supervisor alone and each
worker gets exactly one signal (a second one would make uvicorn skip its graceful drain).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["run_worker", "supervise"]

log = logging.getLogger("tradeoff.router")
STOP_GRACE_S = 30.0  # after the drain timeout (in-flight requests): the request log's drain
QUICK_DEATH_S = 5.0
MAX_QUICK_DEATHS = 5
_PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    """Starts, watches and stops the workers (see the module docstring)."""

    def __init__(self, settings: Any, uvicorn_options: dict[str, Any], sock: socket.socket):
        self.settings = settings
        self.options = uvicorn_options
        self.sock = sock
        self.workers: list[_Worker] = []
        self.stopping: int | None = None  # the signal that asked us to stop
        self.failed = False
        self._wake = threading.Event()

    def _start(self, index: int) -> _Worker:
        payload = pickle.dumps((self.settings, self.options, self.sock.fileno()))
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tradeoff.router.replicas.workers import run_worker; run_worker()",
            ],
            stdin=subprocess.PIPE,
            pass_fds=(self.sock.fileno(),),
            start_new_session=True,
        )
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.close()
        return _Worker(index, process, time.monotonic())

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self._forward(signal.SIGHUP)
            return
        if self.stopping is None:
            self.stopping = signum
            self._forward(signal.SIGTERM)
        self._wake.set()

    def _forward(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)

    def run(self, count: int) -> int:
        """Run `count` workers until a signal stops them; the exit status."""
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {s: signal.signal(s, self._on_signal) for s in handled}
        try:
            self.workers = [self._start(i) for i in range(count)]
            quick_deaths = 0
            while self.stopping is None:
                self._wake.wait(0.2)
                for i, worker in enumerate(self.workers):
                    code = worker.process.poll()
                    if code is None or self.stopping is not None:
                        continue
                    quick = time.monotonic() - worker.started < QUICK_DEATH_S
                    quick_deaths = quick_deaths + 1 if quick else 0
                    if quick_deaths >= MAX_QUICK_DEATHS:
                        log.error("workers keep exiting at start (last status %s); stopping", code)
                        self.failed = True
                        self.stopping = signal.SIGTERM
                        self._forward(signal.SIGTERM)
                        break
                    log.warning("worker %d exited with status %s; starting another", i, code)
                    if quick:
                        time.sleep(min(2.0, 0.2 * quick_deaths))
                    self.workers[i] = self._start(i)
            self._stop_all()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if self.failed else 0

    def _stop_all(self) -> None:
        grace = self.settings.drain_timeout_s + STOP_GRACE_S
        deadline = time.monotonic() + grace
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop in %.0fs; killing it", worker.index, grace)
                worker.process.kill()
                worker.process.wait()


def supervise(settings: Any, uvicorn_options: dict[str, Any], sock: socket.socket) -> int:
    """Serve with `settings.workers` worker processes on `sock` (already listening)."""
    return Supervisor(settings, uvicorn_options, sock).run(settings.workers)


def run_worker() -> None:
    """A worker's main: settings, uvicorn options and the socket's fd arrive on stdin."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # the supervisor died: drain and go
    if os.getppid() == 1:  # it died before we could ask
        return
    settings, options, fd = pickle.loads(sys.stdin.buffer.read())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import uvicorn

    from tradeoff.evals.errors import TradeoffError
    from tradeoff.router.app import create_app

    sock = socket.socket(fileno=fd)
    try:
        app = create_app(settings)
    except TradeoffError as exc:  # changed since the supervisor checked it (a file, the store)
        print(f"error: worker {os.getpid()}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
