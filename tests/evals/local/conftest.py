"""Fixtures for the local tier's CPU tests: a stand-in `vllm` package that serves the upstream
stand-in (or dies), so `tradeoff local serve` runs its real subprocess path without vLLM."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import stop_group

FAKE_API_SERVER = textwrap.dedent(
    """
    import argparse, json, os, sys

    parser = argparse.ArgumentParser()
    for flag in ("--model", "--host", "--port", "--served-model-name"):
        parser.add_argument(flag)
    args, extra = parser.parse_known_args()
    with open(os.environ["FAKE_VLLM_ARGV"], "w") as out:
        json.dump(sys.argv[1:], out)
    with open(os.environ["FAKE_VLLM_PIDS"], "a") as out:
        out.write(f"{os.getpid()}\\n")
    print("INFO loading model", args.model, flush=True)
    if os.environ.get("FAKE_VLLM_DIE"):
        print("ERROR RuntimeError: out of memory while loading weights", flush=True)
        sys.exit(3)

    import uvicorn
    from tests.support.upstream import Rule, Upstream

    name = args.served_model_name or args.model
    upstream = Upstream([Rule(decode_s_per_token=0.001)], served_models=[name], max_model_len=256)
    config = uvicorn.Config(upstream.app(), host=args.host, port=int(args.port), log_level="error")
    if os.environ.get("FAKE_VLLM_DEAF"):  # a server that SIGTERM does not stop
        import signal, threading, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        threading.Thread(target=uvicorn.Server(config).run, daemon=True).start()
        while True:
            time.sleep(60)
    uvicorn.Server(config).run()
    """
)


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put a fake `vllm` package on PYTHONPATH; yields the file its argv is written to.

    Every server it started is stopped when the test ends, even one a failed test left behind
    (each runs in a session of its own, out of reach of the test's own process groups)."""
    root = tmp_path / "fake_vllm"
    package = root / "vllm" / "entrypoints" / "openai"
    package.mkdir(parents=True)
    for folder in (root / "vllm", root / "vllm" / "entrypoints", package):
        (folder / "__init__.py").write_text("")
    (package / "api_server.py").write_text(FAKE_API_SERVER)
    argv_file = tmp_path / "vllm_argv.json"
    monkeypatch.setenv("PYTHONPATH", str(root))
    monkeypatch.setenv("FAKE_VLLM_ARGV", str(argv_file))
    pids = tmp_path / "vllm_pids"
    monkeypatch.setenv("FAKE_VLLM_PIDS", str(pids))
    yield argv_file
    for pid in pids.read_text().split() if pids.exists() else []:
        stop_group(int(pid))
