"""A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` + `postgres` in a temporary
folder, on a free port on 127.0.0.1, no system service.

The server is this process's direct child, started with a parent-death signal, so it stops even
when the test process is killed; `stop()` shuts it down fast and removes its folder. `initdb`
refuses to run as root, so under root (CI) the cluster runs as Debian's `postgres` user.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

ENABLE_HINT = (
    "PostgreSQL tests need its server binaries (initdb, postgres): "
    "`apt-get install postgresql` (Debian), or set TRADEOFF_PG_BIN to the folder holding them"
)
_PR_SET_PDEATHSIG = 1


def find_bin() -> Path | None:
    """The folder with `initdb` and `postgres`: $TRADEOFF_PG_BIN, the PATH, then Debian's."""
    candidates = [os.environ.get("TRADEOFF_PG_BIN", "")]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One running server; `url(dbname)` for a database in it, `create_database()` for a new
    empty one."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable  # False: no fsync (tests); True: the server's defaults (benchmarks)
        self._as = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        # Under root the server's user must reach its folder: /tmp, not a private $TMPDIR.
        self.root = Path(tempfile.mkdtemp(prefix="tradeoff-pg-", dir="/tmp" if self._as else None))
        self.port = _free_port()
        self.user = "tradeoff"
        self._server: subprocess.Popen[bytes] | None = None

    def _preexec(self) -> None:
        if self._as is not None:
            os.setgid(self._as.pw_gid)
            os.setgroups([])
            os.setuid(self._as.pw_uid)
        # Stop the server if this process dies without calling stop() (SIGQUIT: immediate).
        # Set after the user change, which would clear it.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)

    def start(self, timeout_s: float = 60.0) -> Cluster:
        if self._as is not None:
            os.chown(self.root, self._as.pw_uid, self._as.pw_gid)
        data = self.root / "data"
        subprocess.run(
            [self.bin_dir / "initdb", "-D", data, "-U", self.user, "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            check=True, capture_output=True, preexec_fn=self._preexec, timeout=timeout_s,
        )  # fmt: skip
        self._launch()
        self._wait_ready(timeout_s)
        return self

    def _launch(self) -> None:
        data = self.root / "data"
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 (the server holds it)
        fast = [] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                        "-c", "full_page_writes=off"]  # fmt: skip
        self._server = subprocess.Popen(
            [self.bin_dir / "postgres", "-D", data, "-p", str(self.port), "-k", self.root,
             "-c", "listen_addresses=127.0.0.1", *fast, "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=self._preexec, start_new_session=True,  # no terminal Ctrl-C reaches it
        )  # fmt: skip
        log.close()

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (`start_server` brings it back on the same port):
        `fast` (SIGINT: clients disconnected, a clean shutdown) or `immediate` (SIGQUIT: a
        crash, recovered from the log at the next start)."""
        server, self._server = self._server, None
        if server is None or server.poll() is not None:
            return
        server.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        server.wait(timeout=60)

    def start_server(self, timeout_s: float = 60.0) -> None:
        self._launch()
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            if self._server is not None and self._server.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def log_tail(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the folder."""
        server, self._server = self._server, None
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
