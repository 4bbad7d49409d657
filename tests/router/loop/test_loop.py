"""The loop end to end: real proxy, real store, the stand-in upstream scripted mid-test.

A stored policy routes everything to `cheap` (baseline `strong`), served by name with
`--shadow 1.0 --shadow-grader agreement --on-violation baseline`. While cheap answers like
strong the traffic dataset fills and the state becomes ok; once cheap answers wrong the state
becomes violated within a bounded number of pairs and the proxy serves strong; `tradeoff refit
--promote` promotes a version that routes to a model that is right, and the running proxy picks
it up without a failed request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import tradeoff
from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import Store, open_store
from tradeoff.policies.artifact import PolicyArtifact, store_artifact
from tradeoff.policies.families.base import create_policy
from tradeoff.policies.loop.status import kept_over_time, loop_status
from tradeoff.router.settings import LoopSettings, Settings

PROMISED = {
    "accuracy_vs_baseline": 0.99,
    "accuracy_vs_baseline_ci": [0.96, 1.02],
    "savings_vs_baseline": 0.5,
    "savings_ci": [0.45, 0.55],
    "n": 200,
}


def store_policy(store: Store, name: str, model: str, baseline: str) -> PolicyArtifact:
    artifact = PolicyArtifact.from_policy(
        name,
        create_policy("single", {"model": model}),
        requirement="accuracy >= 95% of baseline",
        baseline=baseline,
        metrics=PROMISED,
    )
    store_artifact(store, artifact)
    return artifact


def wait_for(condition: Callable[[], Any], timeout_s: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def status_of(proxy: Proxy, name: str) -> dict[str, Any]:
    doc = httpx.get(f"{proxy.base}/tradeoff/status", timeout=10).json()
    return next(p for p in doc["policies"] if p["name"] == name)


@pytest.mark.slow
def test_shadow_monitor_fallback_refit_and_promotion(tmp_path: Path) -> None:
    with Upstream([Rule(model="cheap", reply="42"), Rule(model="strong", reply="42")]) as up:
        config = write_models(tmp_path / "models.yaml", up.url, ["cheap", "strong"])
        db = tmp_path / "loop.duckdb"
        store = open_store(db)
        store_policy(store, "support", "cheap", "strong")
        settings = Settings(
            stored_policies=("support",),
            config_path=config,
            db_path=db,
            reload_interval_s=0.1,
            log_flush_s=0.05,
            loop=LoopSettings(
                shadow_rate=1.0,
                on_violation="baseline",
                seed=0,
                write_every_s=0.02,  # pairs reach the store, and the monitor, at once
                refresh_s=0.02,
            ),
        )
        with Proxy(settings) as proxy:
            client = sync_client(proxy.url)
            loop = proxy.state.loop

            def pairs() -> int:
                watch = loop.watches.get("support")
                return watch.pairs if watch else 0

            def ask(shadowed: bool = True) -> httpx.Headers:
                """One request; with `shadowed`, wait until its pair is counted."""
                before = pairs()
                raw = client.chat.completions.with_raw_response.create(
                    model="support", messages=[{"role": "user", "content": "what is 6 x 7?"}]
                )
                assert raw.status_code == 200 and raw.parse().choices[0].message.content
                if shadowed:
                    wait_for(lambda: pairs() > before, what="the shadow pair")
                return raw.headers

            def turn(messages: list[dict[str, str]], text: str) -> str:
                """One more turn of a conversation (sessions keep its model); the model."""
                before = pairs()
                messages.append({"role": "user", "content": text})
                raw = client.chat.completions.with_raw_response.create(
                    model="support",
                    messages=messages,  # type: ignore[arg-type]
                )
                messages.append({"role": "assistant", "content": "42"})
                if raw.headers["x-tradeoff-model"] == "cheap":
                    wait_for(lambda: pairs() > before, what="the shadow pair")
                return raw.headers["x-tradeoff-model"]

            conversation: list[dict[str, str]] = []
            assert turn(conversation, "what is 6 x 7?") == "cheap"  # pinned to cheap

            # 1. cheap answers like the baseline: ok within 300 pairs
            sent = 0
            while status_of(proxy, "support")["state"] != "ok":
                assert sent < 300, status_of(proxy, "support")
                ask()
                sent += 1
            ok = status_of(proxy, "support")
            assert ok["version"] == 1 and ok["kept_accuracy"] == 1.0
            assert ok["kept_accuracy_ci"][0] >= 0.95 and ok["promised"]["kept_accuracy"] == 0.99
            loop.writer.wait_written()
            with store.connect() as con:
                n_items, n_outcomes = con.execute(
                    "SELECT count(DISTINCT item_id), count(*) FROM outcomes "
                    "WHERE dataset = 'traffic-support'"
                ).fetchone()
                models = {
                    r[0]
                    for r in con.execute(
                        "SELECT DISTINCT model FROM outcomes WHERE dataset = 'traffic-support'"
                    ).fetchall()
                }
            assert n_items == ok["shadow_pairs"] and n_outcomes == 2 * n_items
            assert models == {"cheap", "strong"}

            # 2. cheap turns wrong: violated within a bounded number of pairs
            up.set_rule(Rule(model="cheap", reply="41"))
            wrong = 0
            while status_of(proxy, "support")["state"] != "violated":
                assert wrong < 60, status_of(proxy, "support")
                assert ask()["x-tradeoff-model"] == "cheap"
                wrong += 1
            violated = status_of(proxy, "support")
            violated_pairs = violated["shadow_pairs"]
            assert violated["kept_accuracy_ci"][1] < 0.95 and violated["change"] is not None

            # 3. --on-violation baseline: the policy's traffic goes to strong, unshadowed
            counted = pairs()
            for _ in range(5):
                headers = ask(shadowed=False)
                assert headers["x-tradeoff-model"] == "strong"
                assert headers["x-tradeoff-policy"] == "support"
            assert pairs() == counted
            # a policy-level switch overrides sessions: the pinned conversation moves too
            assert turn(conversation, "and 6 x 8?") == "strong"
            assert pairs() == counted

            # 4. refit --promote: a version that routes to a model that is right
            loop.writer.wait_written()  # the refit reads the pairs from the store
            code = tradeoff.main(
                ["refit", "--policy", "support", "--promote", "--trials", "10", "--db", str(db)]
            )
            assert code == 0
            wait_for(
                lambda: proxy.state.policies.current["support"].version == 2,
                what="the proxy to pick up version 2",
            )
            wait_for(lambda: status_of(proxy, "support")["version"] == 2, what="a new watch")
            after = status_of(proxy, "support")
            assert after["state"] == "collecting" and after["shadow_pairs"] == 0
            headers = ask()
            assert headers["x-tradeoff-model"] == "strong"  # by the new version, not the fallback
            assert turn(conversation, "and 6 x 9?") == "strong"  # routed afresh by version 2
            assert proxy.state.policies.current["support"].policy.models != ("cheap",)

            # the series a chart draws: version 1 (epoch 1) went ok, then violated
            loop.writer.wait_written()
            series = kept_over_time(store, "support", 1, 0.95, step=25)
            assert series[-1]["state"] == "violated" and series[-1]["pairs"] == violated_pairs
            assert "ok" in {point["state"] for point in series}

            # the CLI's status is the proxy's, read from the store
            proxy.flush()
            loop.writer.wait_written()
            from_store = next(p for p in loop_status(store)["policies"] if p["name"] == "support")
            live = status_of(proxy, "support")
            for key in ("version", "state", "shadow_pairs", "requests", "kept_accuracy"):
                assert from_store[key] == live[key], key
        with store.connect() as con:
            statuses = con.execute("SELECT DISTINCT status FROM requests").fetchall()
        assert statuses == [(200,)]  # nothing failed while versions changed


def test_scheduled_refits_run_beside_the_proxy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Upstream([Rule(reply="42")]) as up:
        config = write_models(tmp_path / "models.yaml", up.url, ["cheap", "strong"])
        db = tmp_path / "refit.duckdb"
        store_policy(open_store(db), "desk", "cheap", "strong")
        settings = Settings(
            stored_policies=("desk",),
            config_path=config,
            db_path=db,
            loop=LoopSettings(shadow_rate=1.0, refit_every_s=0.2),
        )
        with caplog.at_level(logging.INFO, logger="tradeoff.loop"), Proxy(settings):
            wait_for(
                lambda: (
                    "scheduled refit of desk (exit 1): not promoted: no graded traffic"
                    in caplog.text
                ),
                timeout_s=120,
                what="a refit child process",
            )
        assert "version 1 keeps serving" in caplog.text
