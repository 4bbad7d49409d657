"""Waiting for a server to be ready, and failing early when it dies."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.support.upstream import Upstream
from tradeoff.evals.local.errors import ServerStartError
from tradeoff.evals.local.health import ServedModel, root_url, wait_until_healthy
from tradeoff.evals.local.process import start_server


def test_root_url_accepts_the_v1_form() -> None:
    assert root_url("http://h:1/v1/") == "http://h:1"
    assert root_url("http://h:1/") == "http://h:1"


def test_waits_through_503s_until_the_model_is_listed() -> None:
    with Upstream(served_models=["tiny"], max_model_len=512, ready_after_s=1.0) as up:
        started = time.monotonic()
        models = wait_until_healthy(up.url, timeout_s=10, poll_s=0.1)
        waited = time.monotonic() - started
    assert models == [ServedModel("tiny", 512)]
    assert waited >= 0.8  # it really waited for readiness, not the first 503


def test_not_ready_in_time_is_an_error() -> None:
    with (
        Upstream(served_models=["tiny"], ready_after_s=60) as up,
        pytest.raises(ServerStartError, match="not ready after 1s"),
    ):
        wait_until_healthy(up.url, timeout_s=1, poll_s=0.1)


def test_server_dying_during_start_shows_its_last_log_lines(tmp_path: Path) -> None:
    script = "import sys; print('loading weights'); print('CUDA out of memory'); sys.exit(3)"
    server = start_server(
        [sys.executable, "-c", script], host="127.0.0.1", port=1, log_path=tmp_path / "v.log"
    )
    with pytest.raises(ServerStartError) as err:
        wait_until_healthy(server.base_url, process=server, timeout_s=30, poll_s=0.05)
    message = str(err.value)
    assert "exited with code 3" in message
    assert "loading weights | CUDA out of memory" in message
    assert "\n" not in message
