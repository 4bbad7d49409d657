"""Many replicas, one truth: real `tradeoff serve` processes on one PostgreSQL store.

Per-key limits exact across replicas, upstream cooldowns shared, a promotion reaching every
replica within the poll interval, and every replica (and `tradeoff status`) agreeing on the
live monitor. Faults and restarts are tests/router/test_replica_faults.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.router.conftest import async_client, sync_client
from tests.router.keys.test_keys import (
    COST,
    HI,
    WORDS,
    answer_rules,
    priced_models,
    wait_for_fresh_minute,
    write_keys,
)
from tests.router.loop.test_loop import store_policy, wait_for
from tests.router.replicas.support import Start
from tests.router.support import write_models, write_policy
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.errors import StoreBusyError
from tradeoff.evals.store import open_store
from tradeoff.policies.loop.refit import refit_policy
from tradeoff.policies.loop.status import loop_status
from tradeoff.router.keys.keyfile import to_nusd
from tradeoff.router.keys.usage import key_spend
from tradeoff.router.loop.refits import RefitSchedule


async def spread(urls: list[str], key: str, n: int, max_tokens: int = WORDS) -> list[int]:
    """`n` concurrent requests with key `key`, dealt round-robin over `urls`: their statuses."""
    clients = [async_client(url, api_key=key) for url in urls]

    async def one(i: int) -> int:
        try:
            await clients[i % len(clients)].chat.completions.create(
                model="k-model", messages=HI, max_tokens=max_tokens
            )
        except openai.RateLimitError:
            return 429
        return 200

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def usage_row(url: str, name: str) -> tuple[int, int, int]:
    """(spent, reserved, held by unsettled ledger rows) in nano-USD, from the shared tables."""
    with open_store(url, create=False).connect() as con:
        spent, reserved = con.execute(
            "SELECT coalesce(sum(spent_nusd), 0), coalesce(sum(reserved_nusd), 0) "
            "FROM key_usage WHERE name = ?",
            [name],
        ).fetchone() or (0, 0)
        held = con.execute(
            "SELECT coalesce(sum(reserved_nusd), 0) FROM key_holds "
            "WHERE name = ? AND NOT settled AND NOT reaped",
            [name],
        ).fetchone()
    return int(spent), int(reserved), int(held[0] if held else 0)


def test_a_budget_of_k_allows_k_across_two_replicas_and_rpm_is_exact(
    tmp_path: Path, pg_url: str, replicas: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    k, rpm = 10, 8
    with Upstream(answer_rules("k-model", delay_s=0.02)) as upstream:
        config = priced_models(tmp_path / "models.yaml", upstream.url, ["k-model"])
        monkeypatch.setenv("K_SHARED", "sk-shared")
        monkeypatch.setenv("K_PACED", "sk-paced")
        keys = write_keys(
            tmp_path / "keys.yaml",
            {"name": "shared", "key": "os.environ/K_SHARED", "budget_usd": k * COST},
            {"name": "paced", "key": "os.environ/K_PACED", "rpm": rpm, "budget_period": "day"},
        )
        args = ["--config", str(config), "--db", pg_url, "--keys", str(keys)]
        a, b = replicas(args), replicas(args)
        urls = [a.url, b.url]

        statuses = asyncio.run(spread(urls, "sk-shared", 4 * k))
        assert statuses.count(200) == k, statuses  # not 2k: one budget, counted in one place
        assert statuses.count(429) == 3 * k

        wait_for_fresh_minute()
        statuses = asyncio.run(spread(urls, "sk-paced", 3 * rpm))
        assert statuses.count(200) == rpm, statuses

        # Settled: nothing is held, and exactly k answers' cost is spent.
        exact = to_nusd(k * COST)
        wait_for(lambda: usage_row(pg_url, "shared") == (exact, 0, 0), 10, "the settlements")
        # The request log agrees (spend per key, as status and the dashboard read it).
        store = open_store(pg_url, create=False)

        def logged() -> dict[str, Any] | None:
            spend = {s["name"]: s for s in key_spend(store)}
            done = spend["shared"]["requests"] == 4 * k and spend["paced"]["requests"] == 3 * rpm
            return spend if done else None

        spend = wait_for(logged, 15, "both request logs")
        assert spend["shared"]["spent_usd"] == pytest.approx(k * COST)
        assert spend["shared"]["refused"] == 3 * k
        assert spend["paced"]["refused"] == 2 * rpm
        out = subprocess.run(
            [sys.executable, "-m", "tradeoff", "status", "--db", pg_url],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        line = next(ln for ln in out.splitlines() if ln.startswith("shared"))
        assert f"${k * COST:.6f}" in line and f"${k * COST:g}" in line


def test_a_failing_upstream_cools_down_on_every_replica(
    tmp_path: Path, pg_url: str, replicas: Start
) -> None:
    with Upstream([Rule(model="c-down", status=500), Rule(model="c-up")]) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["c-down", "c-up"])
        chain = write_policy(
            tmp_path / "chain.json", "chain", "test_ordered", {"models": ["c-down", "c-up"]}
        )
        args = ["--config", str(config), "--db", pg_url, "--policy", str(chain)]
        a, b = replicas(args), replicas(args)
        # A replica hears only what is said while it listens (from its start on).
        wait_for(lambda: b.metric("tradeoff_cooldowns_listening") == 1, 10, "b to listen")
        raw = sync_client(a.url).chat.completions.with_raw_response.create(
            model="chain", messages=HI
        )
        assert raw.headers["x-tradeoff-model"] == "c-up"
        assert upstream.model_counts["c-down"] == 1  # a found it failing
        heard = 'tradeoff_cooldown_messages_total{direction="heard"}'
        wait_for(lambda: b.metric(heard) >= 1, 10, "b to hear of the cooldown")
        for _ in range(3):
            raw = sync_client(b.url).chat.completions.with_raw_response.create(
                model="chain", messages=HI
            )
            assert raw.headers["x-tradeoff-model"] == "c-up"
        assert upstream.model_counts["c-down"] == 1  # b never tried it: it was cooling


def test_a_promotion_reaches_every_replica_within_the_poll_interval(
    tmp_path: Path, pg_url: str, replicas: Start
) -> None:
    with Upstream([Rule(model="p-cheap"), Rule(model="p-strong")]) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["p-cheap", "p-strong"])
        store = open_store(pg_url)
        store_policy(store, "support", "p-cheap", "p-strong")
        args = ["--config", str(config), "--db", pg_url, "--policy", "support"]
        both = [replicas(args), replicas(args)]
        clients = [sync_client(r.url) for r in both]
        for client in clients:
            raw = client.chat.completions.with_raw_response.create(model="support", messages=HI)
            assert raw.headers["x-tradeoff-model"] == "p-cheap"
        promoted = time.monotonic()
        store_policy(store, "support", "p-strong", "p-strong")  # version 2, promoted
        delays = []
        for client in clients:

            def serves_v2(client: openai.OpenAI = client) -> bool:
                raw = client.chat.completions.with_raw_response.create(model="support", messages=HI)
                return raw.headers["x-tradeoff-model"] == "p-strong"

            wait_for(serves_v2, 10, "the promotion")
            delays.append(time.monotonic() - promoted)
        # Each replica polls the serving version every second (reload_interval_s).
        assert max(delays) < 3.0, delays
        assert [r.get("/health")["policies"][0]["version"] for r in both] == [2, 2]


def test_replicas_and_status_agree_on_the_live_monitor(
    tmp_path: Path, pg_url: str, replicas: Start
) -> None:
    rules = [Rule(model="m-cheap", reply="42"), Rule(model="m-strong", reply="42")]
    with Upstream(rules) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["m-cheap", "m-strong"])
        store = open_store(pg_url)
        store_policy(store, "support", "m-cheap", "m-strong")
        args = ["--config", str(config), "--db", pg_url, "--policy", "support",
                "--shadow", "1.0", "--on-violation", "baseline"]  # fmt: skip
        both = [replicas(args), replicas(args)]
        clients = [sync_client(r.url) for r in both]

        def send(n: int) -> list[str]:
            models = []
            for i in range(n):
                raw = clients[i % 2].chat.completions.with_raw_response.create(
                    model="support", messages=[{"role": "user", "content": f"6 x 7? ({i})"}]
                )
                models.append(raw.headers["x-tradeoff-model"])
            return models

        def statuses(pairs: int) -> list[dict[str, Any]] | None:
            docs = [r.get("/tradeoff/status")["policies"][0] for r in both]
            return docs if all(d["shadow_pairs"] >= pairs for d in docs) else None

        assert set(send(60)) == {"m-cheap"}
        first, second = wait_for(lambda: statuses(60), 20, "both replicas to read 60 pairs")
        assert first == second  # same pairs, same order: the same state and bounds
        assert first["shadow_pairs"] == 60 and first["kept_accuracy"] == 1.0
        assert first == loop_status(store)["policies"][0]  # and `tradeoff status` agrees

        upstream.set_rule(Rule(model="m-cheap", reply="41"))  # the cheap model turns wrong
        send(60)

        def violated() -> list[dict[str, Any]] | None:
            docs = [r.get("/tradeoff/status")["policies"][0] for r in both]
            return docs if all(d["state"] == "violated" for d in docs) else None

        first, second = wait_for(violated, 20, "both replicas to see the violation")
        assert first["change"] == second["change"]  # the alarm rang at the same pair
        # --on-violation baseline, on every replica
        assert set(send(4)) == {"m-strong"}

        def alarms() -> int:
            with store.connect() as con:
                row = con.execute(
                    "SELECT count(*) FROM policy_events WHERE name = 'support' "
                    "AND event = 'violated'"
                ).fetchone()
            return int(row[0]) if row else 0

        wait_for(alarms, 10, "the alarm to be recorded")
        time.sleep(2.5)  # both replicas have acted on it by now (they refresh every second)
        assert alarms() == 1  # recorded once, though both replicas raised it
        assert all(
            r.metric('tradeoff_policy_violations_total{policy="support"}') == 1 for r in both
        )


def test_replicas_share_one_refit_schedule(pg_url: str) -> None:
    """`--refit-every` on every replica refits once per period, and never twice at once."""
    store = open_store(pg_url)
    store_policy(store, "support", "m-cheap", "m-strong")
    first, second = RefitSchedule(["support"], 60, pg_url), RefitSchedule(["support"], 60, pg_url)
    assert first._due("support")
    assert not second._due("support")  # the other replica started it moments ago
    with store.lock("refit:support"), pytest.raises(StoreBusyError, match="another refit"):
        refit_policy(store, "support")


def test_a_conversation_keeps_its_model_whichever_replica_answers_a_turn(
    tmp_path: Path, pg_url: str, replicas: Start
) -> None:
    """Turns dealt over two replicas stay on the model the first turn was routed to."""
    with Upstream([Rule(model="s-cheap"), Rule(model="s-dear")]) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["s-cheap", "s-dear"])
        table = {"table": {"a": "s-cheap", "b": "s-dear"}, "default": "s-cheap"}
        policy = write_policy(tmp_path / "t.json", "tasks", "task_table", table)
        args = ["--config", str(config), "--db", pg_url, "--policy", str(policy)]
        both = [replicas(args), replicas(args)]
        for replica in both:
            wait_for(lambda r=replica: r.metric("tradeoff_sessions_listening") == 1, 10, "listen")
        clients = [sync_client(r.url) for r in both]
        messages: list[dict[str, str]] = [{"role": "system", "content": "You are terse."}]
        seen = []
        for i, task in enumerate(["a", "b", "a", "b", "b"]):
            messages.append({"role": "user", "content": f"turn {i}"})
            raw = clients[i % 2].chat.completions.with_raw_response.create(
                model="tasks",
                messages=messages,  # type: ignore[arg-type]
                extra_headers={"x-tradeoff-task": task},
            )
            answer = raw.parse().choices[0].message.content or ""
            messages.append({"role": "assistant", "content": answer})
            seen.append(raw.headers["x-tradeoff-model"])
        assert seen == ["s-cheap"] * 5  # alone, the b turns would go to s-dear
        heard = 'tradeoff_session_messages_total{direction="heard"}'
        assert both[1].metric(heard) >= 1
        # How long a pin takes to travel is the machine's business (a loaded host can exceed the
        # 50 ms wait): what must hold is the model each turn got, checked above.
