"""Two replicas on one PostgreSQL server, with faults: every answered request exactly once.

The server is the test's own (initdb in a temporary folder), so it can be stopped and started
mid-load. Faults injected: upstream 500s and 429s (fallbacks and retries), PostgreSQL stopped
while both replicas answer, a replica killed with -9 while its spool holds rows the store has
not seen, its restart (replaying them), and a copy of every spool file replayed once more.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.keys.test_keys import COST, WORDS, answer_rules, priced_models, write_keys
from tests.router.loop.test_loop import wait_for
from tests.router.replicas.support import Replica, Start
from tests.router.support import write_models, write_policy
from tests.support.postgres import Cluster, find_bin
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import open_store
from tradeoff.router.keys.keyfile import to_nusd

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL server of this test's own, to stop and start."""
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries are not installed")
    server = Cluster(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


async def drive(
    urls: list[str], n: int, *, key: str | None = None, concurrency: int = 16, tag: str = ""
) -> list[tuple[str, int, float]]:
    """`n` requests dealt over `urls`: (request id, status, seconds) of each, all answered."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    gate = asyncio.Semaphore(concurrency)
    out: list[tuple[str, int, float]] = []
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:

        async def one(i: int) -> None:
            # Every 7th request meets a failing first model (a fallback), every 11th a
            # rate-limited one (a retry after its Retry-After, then a fallback).
            prompt = "boom" if i % 7 == 0 else "busy" if i % 11 == 0 else "fine"
            body = {
                "model": "chain",
                "messages": [{"role": "user", "content": f"{prompt} {tag}{i}"}],
                "max_tokens": WORDS,
            }
            async with gate:
                started = time.monotonic()
                response = await http.post(f"{urls[i % len(urls)]}/chat/completions", json=body)
                elapsed = time.monotonic() - started
            out.append((response.headers["x-tradeoff-request-id"], response.status_code, elapsed))

        await asyncio.gather(*(one(i) for i in range(n)))
    return out


def rows(url: str) -> list[tuple[Any, ...]]:
    with open_store(url, create=False).connect() as con:
        return con.execute("SELECT request_id, status, cost_usd, key_name FROM requests").fetchall()


def pending(replica: Replica) -> int:
    return int(replica.get("/health")["log_pending"])


def test_two_thousand_requests_over_two_replicas_with_faults_land_exactly_once(
    tmp_path: Path,
    cluster: Cluster,
    replicas: Start,
) -> None:
    url = cluster.create_database()
    rules = [
        Rule(model="f-first", contains="boom", status=500),
        Rule(model="f-first", contains="busy", status=429, retry_after=0.01),
        *answer_rules("f-first", "f-second"),
    ]
    spool = tmp_path / "spool"
    with Upstream(rules) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["f-first", "f-second"])
        chain = write_policy(
            tmp_path / "chain.json", "chain", "test_ordered", {"models": ["f-first", "f-second"]}
        )
        args = ["--config", str(config), "--db", url, "--policy", str(chain)]
        a, b = replicas(args), replicas(args)
        answered = asyncio.run(drive([a.url, b.url], 600, tag="one-"))

        cluster.stop_server()  # the store goes away; both replicas keep answering
        answered += asyncio.run(drive([a.url, b.url], 600, tag="two-"))
        assert pending(b) > 0  # b's rows of the outage wait in its spool
        copies = tmp_path / "copies"
        shutil.copytree(spool, copies)  # every spool file, to be replayed a second time
        b.process.send_signal(signal.SIGKILL)  # nothing in flight to b: its spool is all it had
        b.process.wait(timeout=10)
        answered += asyncio.run(drive([a.url], 400, tag="three-"))

        cluster.start_server()
        b = replicas(args)  # claims the spool files b left, and writes their rows
        answered += asyncio.run(drive([a.url, b.url], 400, tag="four-"))
        wait_for(lambda: pending(a) == 0 and pending(b) == 0, 60, "both logs to drain")

        # Replay every row of the outage a second time: a restart that finds the copies.
        for path in copies.rglob("segment-*.jsonl"):
            target = spool / path.relative_to(copies)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target.with_name(f"segment-again-{path.name.removeprefix('segment-')}"))
        b.process.send_signal(signal.SIGTERM)
        assert b.process.wait(timeout=60) in (0, -signal.SIGTERM)
        b = replicas(args)
        wait_for(lambda: pending(b) == 0 and not list(spool.rglob("segment-again-*")), 60, "")

    assert len(answered) == 2000
    statuses = {status for _, status, _ in answered}
    assert statuses == {200}, statuses  # every fault was absorbed by a fallback or a retry
    stored = rows(url)
    ids = [r[0] for r in stored]
    assert len(ids) == len(set(ids)) == 2000  # exactly once: none lost, none twice
    assert set(ids) == {i for i, _, _ in answered}
    assert upstream.model_counts["f-first"] > 0 and upstream.model_counts["f-second"] > 2000 // 7


def test_postgres_restarted_mid_load_loses_no_answered_request(
    tmp_path: Path,
    cluster: Cluster,
    replicas: Start,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Load on both replicas while PostgreSQL stops for a few seconds and comes back: every
    request is answered without waiting for the store, each is logged once, the limits keep to
    their shares meanwhile, and the spend they settle afterwards matches the request log."""
    url = cluster.create_database()
    monkeypatch.setenv("K_LOAD", "sk-load")
    with Upstream(answer_rules("f-first", "f-second", delay_s=0.005)) as upstream:
        config = priced_models(tmp_path / "models.yaml", upstream.url, ["f-first", "f-second"])
        chain = write_policy(
            tmp_path / "chain.json", "chain", "test_ordered", {"models": ["f-first", "f-second"]}
        )
        keys = write_keys(
            tmp_path / "keys.yaml",
            {"name": "load", "key": "os.environ/K_LOAD", "budget_usd": 10_000 * COST},
        )
        args = ["--config", str(config), "--db", url, "--policy", str(chain), "--keys", str(keys)]
        a, b = replicas(args), replicas(args)

        answered: list[tuple[str, int, float]] = []
        done = threading.Event()

        def load() -> None:
            async def batches() -> None:
                batch = 0
                while not done.is_set():
                    answered.extend(await drive([a.url, b.url], 50, key="sk-load", tag=f"{batch}-"))
                    batch += 1

            asyncio.run(batches())

        # The load runs in a thread; the server is stopped and started from this one (its
        # parent-death signal is tied to the thread that started it).
        driver = threading.Thread(target=load)
        driver.start()
        try:
            time.sleep(2.0)
            cluster.stop_server()
            outage_start = len(answered)
            time.sleep(4.0)
            outage_end = len(answered)
            assert outage_end - outage_start >= 100  # answered on while the store was down
            cluster.start_server()
            wait_for(lambda: len(answered) > outage_end + 100, 60, "load after the restart")
        finally:
            done.set()
            driver.join(120)
        assert {status for _, status, _ in answered} == {200}
        slowest = max(seconds for _, _, seconds in answered)
        assert slowest < 3.0, slowest  # no client waited for the store

        def settled() -> tuple[int, int] | None:
            stored = [r for r in rows(url) if r[3] == "load"]
            if len(stored) < len(answered):
                return None
            with open_store(url, create=False).connect() as con:
                spent, reserved, counted = con.execute(
                    "SELECT sum(spent_nusd), sum(reserved_nusd), sum(requests) FROM key_usage "
                    "WHERE name = 'load'"
                ).fetchone()  # type: ignore[misc]
            logged = sum(to_nusd(r[2]) for r in stored)
            last[:] = [int(spent), int(reserved), logged, int(counted), len(stored), len(answered)]
            exact = int(spent) == logged and int(counted) == len(stored)  # each settled once
            return (int(spent), logged) if int(reserved) == 0 and exact else None

        last: list[int] = []
        try:
            wait_for(settled, 60, "the log and the limits to settle")
        except AssertionError:
            raise AssertionError(
                f"spent, reserved, logged, settled, rows, answered: {last}"
            ) from None
        assert [r.get("/health")["limits_pending"] for r in (a, b)] == [0, 0]
        stored = rows(url)
        ids = [r[0] for r in stored]
        assert len(ids) == len(set(ids)) == len(answered)
        assert {i for i, _, _ in answered} <= set(ids)
        assert any("store is unreachable" in line for line in a.stderr + b.stderr)
