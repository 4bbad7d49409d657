"""`tradeoff serve --drain-timeout`: a stream still running when the drain runs out is cut with
the protocol's error event, and its log row says so."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.router.support import serve_process, write_models, write_policy
from tests.support.processes import stop
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import Store

HI = [{"role": "user", "content": "count slowly"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    words = " ".join(f"w{i}" for i in range(60))
    with Upstream([Rule(model="slowstream", chunk_delay_s=0.2, reply=words)]) as up:
        yield up


def test_a_stream_cut_by_shutdown_ends_with_an_error_event_and_is_logged_as_cut(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["slowstream"])
    write_policy(tmp_path / "p.json", "live", "single", {"model": "slowstream"})
    db = tmp_path / "db.duckdb"
    process, url, _ = serve_process(
        ["--policy", str(tmp_path / "p.json"), "--config", str(config), "--db", str(db),
         "--drain-timeout", "1"]
    )  # fmt: skip
    try:
        lines: list[str] = []
        body = {"model": "live", "messages": HI, "stream": True}
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", f"{url}/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            request_id = response.headers["x-tradeoff-request-id"]
            for line in response.iter_lines():
                lines.append(line)
                if len(lines) == 2:
                    started = time.monotonic()
                    process.send_signal(signal.SIGTERM)
        waited = time.monotonic() - started
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        stop(process)
    events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert "[DONE]" not in events  # cut, not finished
    last = json.loads(events[-1])
    assert last["error"]["code"] == "proxy_shutting_down", last
    assert waited < 10  # the drain timeout (1 s) cut it, not the stream's own end (12 s)
    with Store(db).connect(read_only=True) as con:
        row = con.execute(
            "SELECT status, error FROM requests WHERE request_id = ?", [request_id]
        ).fetchone()
    assert row is not None and row[0] == 503, row
    assert "shut down" in row[1]
