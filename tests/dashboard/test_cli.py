"""`tradeoff dashboard`: the command line and its mistakes (the running server is in test_browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import tradeoff
from tests.conftest import Spawn
from tests.support.processes import tradeoff_argv
from tradeoff.dashboard import app_path, streamlit_command
from tradeoff.evals.ports import port_is_free
from tradeoff.evals.store import open_store


def test_the_app_is_found_through_the_package() -> None:
    from tradeoff import dashboard

    assert app_path() == Path(dashboard.__file__).parent / "app.py"
    assert app_path().is_file()
    assert (app_path().parent / "views" / "tradeoffs.py").is_file()


def test_streamlit_runs_headless_on_the_requested_port() -> None:
    command = streamlit_command(8600, "127.0.0.1")
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert command[4] == str(app_path())
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "true"
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--browser.gatherUsageStats"] == "false"


def test_streamlit_listens_on_this_machine_only_unless_told() -> None:
    command = streamlit_command(8600)
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1"


def _outside_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.slow
def test_the_dashboard_listens_on_localhost_by_default_and_says_so(
    tmp_path: Path, spawn: Spawn
) -> None:
    open_store(tmp_path / "s.duckdb")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = tradeoff_argv("dashboard", "--port", str(port), "--db", str(tmp_path / "s.duckdb"))
    cli = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert cli.stdout is not None
    assert f"listening on http://127.0.0.1:{port} " in cli.stdout.readline()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        assert cli.poll() is None and time.monotonic() < deadline, "streamlit did not start"
        time.sleep(0.2)
    outside = _outside_address()
    if outside is not None:  # another machine would reach it there: nothing listens
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://{outside}:{port}/_stcore/health", timeout=2)


def test_a_port_in_use_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    open_store(tmp_path / "s.duckdb")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code = tradeoff.main(
            [
                "dashboard",
                "--port",
                str(port),
                "--address",
                "127.0.0.1",
                "--db",
                str(tmp_path / "s.duckdb"),
            ]
        )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"error: port {port} is in use; pick another with --port"


def test_a_db_in_a_missing_folder_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = tradeoff.main(["dashboard", "--db", str(tmp_path / "nope" / "s.duckdb")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: no store at {tmp_path / 'nope' / 's.duckdb'}; point at one")
    assert err.count("\n") == 1


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert tradeoff.main(["dashboard", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--db" in out
    assert "--host" in out and "127.0.0.1" in out


def test_a_missing_store_is_one_line_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The dashboard only reads: it never creates a store (issue 15)."""
    code = tradeoff.main(["dashboard", "--port", "1", "--db", str(tmp_path / "none.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: no store at {tmp_path / 'none.duckdb'}; ")
    assert not (tmp_path / "none.duckdb").exists()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_sigterm_stops_streamlit_too(seeded_db: Path, spawn: Spawn) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = tradeoff_argv("dashboard", "--port", str(port), "--address", "127.0.0.1", "--db",
                         str(seeded_db))  # fmt: skip
    cli = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        assert cli.poll() is None and time.monotonic() < deadline, "streamlit did not start"
        time.sleep(0.2)
    (streamlit,) = _children(cli.pid)
    cli.send_signal(signal.SIGTERM)
    _, err = cli.communicate(timeout=30)
    assert cli.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    with pytest.raises(ProcessLookupError):  # stopped and reaped, not orphaned
        os.kill(streamlit, 0)
    assert port_is_free("127.0.0.1", port)
