"""No answered request is ever missing from the log: poison rows, kill -9, a locked store.

Each test drives the real proxy (in-process, or a real `tradeoff serve` process) against the
upstream stand-in and reads the real DuckDB store afterwards.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.router.conftest import NODELAY
from tests.router.support import Proxy, serve_process, write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import Store
from tradeoff.router.settings import Settings

HI = [{"role": "user", "content": "hello"}]


def body(prompt: str, **more: object) -> dict[str, object]:
    return {"model": "d-cheap", "messages": [{"role": "user", "content": prompt}], **more}


def store_rows(db: Path) -> tuple[int, int, set[str]]:
    with Store(db).connect(read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT request_id FROM requests").fetchall()]
    return len(ids), len(set(ids)), set(ids)


def test_a_poison_row_never_blocks_the_rows_after_it(tmp_path: Path) -> None:
    """50 normal requests, one whose metadata.task is a lone surrogate, 300 normal: 351 rows."""
    with Upstream([]) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["d-cheap"])
        settings = Settings(config_path=config, db_path=tmp_path / "db.duckdb", log_flush_s=0.02)
        proxy = Proxy(settings).start()
        try:
            with httpx.Client(
                base_url=proxy.url,
                timeout=10,
                transport=httpx.HTTPTransport(socket_options=NODELAY),
            ) as http:
                for i in range(50):
                    assert http.post("/chat/completions", json=body(f"a{i}")).status_code == 200
                # json.dumps writes the lone surrogate as the escape \ud800, as a client would.
                poison = http.post(
                    "/chat/completions",
                    content=json.dumps(body("poison", metadata={"task": "\ud800x"})).encode(),
                    headers={"content-type": "application/json"},
                )
                assert poison.status_code == 200
                for i in range(300):
                    assert http.post("/chat/completions", json=body(f"b{i}")).status_code == 200
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    health = http.get(f"{proxy.base}/health").json()
                    if health["log_pending"] == 0:
                        break
                    time.sleep(0.05)
                # log_pending is truthful: 0 only once every row is in the store
                assert health["log_pending"] == 0
                assert len(proxy.rows()) == 351
                assert health["dead_letter"]["rows"] == 0
        finally:
            proxy.stop()
        total, distinct, _ = store_rows(tmp_path / "db.duckdb")
        assert total == distinct == 351
        (row,) = proxy.rows("request_id = ?", [poison.headers["x-tradeoff-request-id"]])
        assert row["task"] == "\\ud800x"  # escaped, so any store can hold it


FINAL = {"/chat/completions": "data: [DONE]", "/responses": '"type": "response.completed"',
         "/messages": '"type": "message_stop"', "/completions": "data: [DONE]"}  # fmt: skip
STREAMED = {
    "/chat/completions": {"model": "cheap", "messages": HI, "stream": True},
    "/responses": {"model": "cheap-router", "input": "hi", "stream": True},
    "/messages": {"model": "cheap-router", "max_tokens": 9, "messages": HI, "stream": True},
    "/completions": {"model": "cheap", "prompt": "hi", "stream": True},
}


@pytest.mark.parametrize("path", STREAMED)
def test_a_stream_is_logged_before_its_last_event_leaves(proxy: Proxy, path: str) -> None:
    log = proxy.state.request_log
    with (
        httpx.Client(base_url=proxy.url, timeout=10) as http,
        http.stream("POST", path, json=STREAMED[path]) as response,
    ):
        request_id = response.headers["x-tradeoff-request-id"]
        for line in response.iter_lines():
            if FINAL[path] in line:
                # Before this event was sent, the row was on disk: in the spool, or already in
                # the store (which it reaches before the spool lets it go).
                spooled = b"".join(p.read_bytes() for p in log.folder.glob("*.jsonl"))
                assert request_id.encode() in spooled or proxy.rows("request_id = ?", [request_id])
                break
        else:
            raise AssertionError(f"{path}: no final event")


def logged(stderr: list[str], text: str, timeout_s: float = 10.0) -> bool:
    """Whether a line with `text` shows up in a process's stderr (read by a thread)."""
    deadline = time.monotonic() + timeout_s
    while not any(text in line for line in stderr):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def restart_and_drain(args: list[str]) -> None:
    """Start `tradeoff serve ARGS` again, wait until its log has nothing pending, SIGTERM it."""
    process, url, stderr = serve_process(args)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(url.removesuffix("/v1") + "/health", timeout=5).json()
                if health["log_pending"] == 0:
                    break
            except httpx.HTTPError:
                pass  # not accepting yet
            assert time.monotonic() < deadline, "".join(stderr)
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert logged(stderr, "replaying"), "".join(stderr)


# (path, body, the stream's last line): every protocol, streamed or not.
def kinds(prompt: str) -> list[tuple[str, dict[str, object], str | None]]:
    return [
        ("/chat/completions", body(prompt), None),
        ("/responses", {"model": "d-cheap", "input": prompt, "stream": True},
         'data: {"type": "response.completed"'),
        ("/messages", {"model": "d-cheap", "max_tokens": 9,
                       "messages": [{"role": "user", "content": prompt}]}, None),
        ("/chat/completions", body(prompt, stream=True), "data: [DONE]"),
        ("/messages", {"model": "d-cheap", "max_tokens": 9, "stream": True,
                       "messages": [{"role": "user", "content": prompt}]},
         'data: {"type": "message_stop"}'),
    ]  # fmt: skip


async def load(url: str, answered: list[str], stop: asyncio.Event) -> None:
    """Requests at concurrency 16 until `stop`, on every protocol; the ids of those answered in
    full (a 200 with its whole body, a stream with its last event) go to `answered`."""
    transport = httpx.AsyncHTTPTransport(socket_options=NODELAY)
    async with httpx.AsyncClient(base_url=url, timeout=10, transport=transport) as http:

        async def worker(w: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                choices = kinds(f"w{w} {i}")
                path, payload, last = choices[i % len(choices)]
                try:
                    if last is not None:
                        async with http.stream("POST", path, json=payload) as response:
                            lines = [line async for line in response.aiter_lines()]
                        if response.status_code == 200 and any(
                            line.startswith(last) for line in lines
                        ):
                            answered.append(response.headers["x-tradeoff-request-id"])
                    else:
                        response = await http.post(path, json=payload)
                        if response.status_code == 200:
                            answered.append(response.headers["x-tradeoff-request-id"])
                except httpx.HTTPError:
                    await asyncio.sleep(0.01)  # the server is gone: this one was not answered

        await asyncio.gather(*(worker(w) for w in range(16)))


@pytest.mark.slow
def test_kill_9_during_load_then_restart_keeps_every_answered_request(tmp_path: Path) -> None:
    with Upstream([Rule(delay_s=0.002)]) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["d-cheap"])
        args = ["--config", str(config), "--db", str(tmp_path / "db.duckdb")]
        process, url, _ = serve_process(args)
        answered: list[str] = []

        async def run() -> None:
            stop = asyncio.Event()
            driver = asyncio.ensure_future(load(url, answered, stop))
            deadline = time.monotonic() + 60
            while len(answered) < 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)  # mid-run: requests are in flight
            await asyncio.to_thread(process.wait, 10)
            stop.set()
            await driver

        try:
            asyncio.run(run())
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert len(answered) >= 200, "the load never got going"
        # Same arguments, no extra flags: the new process finds the spool and replays it.
        restart_and_drain(args)
    total, distinct, ids = store_rows(tmp_path / "db.duckdb")
    missing = set(answered) - ids
    assert not missing, f"{len(missing)} of {len(answered)} answered requests are not in the log"
    assert total == distinct  # none twice


HOLD = """
import duckdb, sys, time
while True:  # the proxy opens the file for moments of its own: wait for a gap
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException:
        time.sleep(0.01)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_sigterm_with_the_store_locked_then_restart_loses_nothing(tmp_path: Path) -> None:
    with Upstream([]) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["d-cheap"])
        write_policy(tmp_path / "p.json", "d-live", "single", {"model": "d-cheap"})
        db = tmp_path / "db.duckdb"
        args = ["--config", str(config), "--db", str(db), "--policy", str(tmp_path / "p.json")]
        process, url, stderr = serve_process(args)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            ids = []
            with httpx.Client(base_url=url, timeout=10) as http:
                for i in range(30):
                    response = http.post("/chat/completions", json=body(f"x{i}", model="d-live"))
                    assert response.status_code == 200
                    ids.append(response.headers["x-tradeoff-request-id"])
                assert http.get(url.removesuffix("/v1") + "/health").json()["log_pending"] == 30
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) in (0, -signal.SIGTERM)
            assert time.monotonic() - started < 15  # a bounded wait, not 30 s
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=10)
        assert logged(stderr, "stay in the spool"), "".join(stderr)
        restart_and_drain(args)
    total, distinct, stored = store_rows(db)
    assert set(ids) <= stored
    assert total == distinct == 30
