"""`tradeoff serve --workers N`: one port, N processes, signals forwarded, none left behind.

Each test marks its processes with an environment variable and looks them up in /proc, so a
worker that outlived its supervisor cannot go unnoticed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.router.loop.test_loop import wait_for
from tests.router.support import serve_process, write_models, write_policy
from tests.support.processes import pids_with_env, stop
from tests.support.upstream import Upstream
from tradeoff.evals.store import open_store

MARK = "TRADEOFF_TEST_WORKERS"


@pytest.fixture
def mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A marker in the environment every process of the test inherits; stragglers are killed
    (and the test fails) at the end."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(MARK, value)
    monkeypatch.setenv("TRADEOFF_SPOOL_DIR", str(tmp_path / "spool"))
    yield value
    left = pids_with_env(MARK, value)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"


def start(tmp_path: Path, url: str, db: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    config = write_models(tmp_path / "models.yaml", url, ["w-cheap"])
    policy = write_policy(tmp_path / "p.json", "w-live", "single", {"model": "w-cheap"})
    process, base, _ = serve_process(
        ["--config", str(config), "--db", db, "--policy", str(policy), "--workers", str(workers)]
    )
    return process, base


async def hammer(url: str, n: int, concurrency: int = 16) -> tuple[list[str], set[int]]:
    """`n` chat requests on fresh connections (so every worker gets some): their request ids,
    and the worker pids that answered /health meanwhile."""
    ids: list[str] = []
    pids: set[int] = set()
    body = {"model": "w-live", "messages": [{"role": "user", "content": "hi"}]}
    limits = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limits, httpx.AsyncClient(base_url=url, timeout=30) as http:
            response = await http.post("/chat/completions", json=body)
            assert response.status_code == 200
            ids.append(response.headers["x-tradeoff-request-id"])
            health = await http.get(url.removesuffix("/v1") + "/health")
            pids.add(health.json()["pid"])

    await asyncio.gather(*(one() for _ in range(n)))
    return ids, pids


def stored_ids(db: str) -> list[str]:
    with open_store(db, create=False).connect() as con:
        return [r[0] for r in con.execute("SELECT request_id FROM requests").fetchall()]


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_workers_share_one_port_and_stop_together(
    tmp_path: Path, pg_url: str, mark: str, stop_with: signal.Signals
) -> None:
    with Upstream([]) as upstream:
        process, url = start(tmp_path, upstream.url, pg_url, 3)
        try:
            wait_for(
                lambda: len(pids_with_env(MARK, mark)) >= 4, 20, "the supervisor and 3 workers"
            )
            ids, pids = asyncio.run(hammer(url, 120))
            assert len(pids) >= 2, pids  # several workers answered on the one port
            assert process.pid not in pids  # the supervisor serves nothing itself
            process.send_signal(stop_with)
            assert process.wait(timeout=90) == 0
        finally:
            stop(process)
        assert pids_with_env(MARK, mark) == []  # every worker drained and exited
        stored = stored_ids(pg_url)
        assert len(stored) == len(set(stored)) == len(ids) == 120
        assert set(stored) == set(ids)


def test_a_dead_worker_is_replaced_and_a_killed_supervisor_leaves_none(
    tmp_path: Path, pg_url: str, mark: str
) -> None:
    with Upstream([]) as upstream:
        process, url = start(tmp_path, upstream.url, pg_url, 2)
        try:

            def workers(*gone: int) -> list[int]:
                return [p for p in pids_with_env(MARK, mark) if p not in (process.pid, *gone)]

            wait_for(lambda: len(workers()) == 2, 20, "two workers")
            first, _ = asyncio.run(hammer(url, 40))
            victim = workers()[0]
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: len(workers(victim)) == 2, 20, "a replacement worker")
            second, _ = asyncio.run(hammer(url, 40))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            # Each worker gets SIGTERM from the kernel, drains its log and exits.
            wait_for(lambda: not pids_with_env(MARK, mark), 60, "the workers to exit")
        finally:
            stop(process)
        answered = set(first) | set(second)
        # The killed worker's unsettled rows stay in its spool until a process on the store
        # claims them; a restart does (here: one more plain serve, drained at once).
        replay, _, _ = serve_process(["--config", str(tmp_path / "models.yaml"), "--db", pg_url])
        try:
            wait_for(lambda: answered <= set(stored_ids(pg_url)), 30, "every answered row")
        finally:
            stop(replay)
        stored = stored_ids(pg_url)
        assert len(stored) == len(set(stored))
        assert answered <= set(stored)
