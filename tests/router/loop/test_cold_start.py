"""Cold start end to end: from a policy that is only the expensive model the app calls today to a
proven cheaper one, from its traffic alone.

Three models behind the stand-in upstream: `big` (expensive, right: the baseline), `cheap`
(answers as big does) and `wrong` (cheap, never right). `tradeoff explore` stores version 1
(big alone); the real proxy serves it with shadow grading (agreement) while 600 requests
arrive; the race drops `wrong`; `tradeoff refit --promote` promotes a cheaper version, which the
running proxy picks up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tradeoff
from tests.router.conftest import sync_client
from tests.router.loop.test_loop import status_of, wait_for
from tests.router.support import Proxy, write_models
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import open_store
from tradeoff.router.settings import LoopSettings, Settings

DEAR = {"input_cost_per_token": 1e-5, "output_cost_per_token": 2e-5}
CHEAP = {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}
REQUIRE = "accuracy >= 95% of baseline"


def cold_start_models(tmp_path: Path, url: str) -> Path:
    return write_models(
        tmp_path / "models.yaml", url, ["big", "cheap", "wrong", "later"], big=DEAR,
        cheap=CHEAP, wrong=CHEAP, later=CHEAP,
    )  # fmt: skip


def ask(client: Any, i: int) -> str:
    """One request (distinct prompts, a few tasks' worth of phrasing); the model that served."""
    raw = client.chat.completions.with_raw_response.create(
        model="desk", messages=[{"role": "user", "content": f"question {i}: what is 6 x 7?"}]
    )
    assert raw.status_code == 200 and raw.parse().choices[0].message.content
    return str(raw.headers["x-tradeoff-model"])


@pytest.mark.slow
def test_from_the_expensive_model_alone_to_a_proven_cheaper_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [Rule(model="big", reply="42"), Rule(model="cheap", reply="42"),
             Rule(model="wrong", reply="41"), Rule(model="later", reply="42")]  # fmt: skip
    with Upstream(rules) as up:
        config = cold_start_models(tmp_path, up.url)
        db = tmp_path / "cold.duckdb"
        code = tradeoff.main(
            ["explore", "desk", "--baseline", "big", "--candidates", "cheap,wrong",
             "--require", REQUIRE, "--config", str(config), "--db", str(db)]
        )  # fmt: skip
        assert code == 0
        settings = Settings(
            stored_policies=("desk",),
            config_path=config,
            db_path=db,
            reload_interval_s=0.1,
            log_flush_s=0.05,
            loop=LoopSettings(
                shadow_rate=0.5, shadow_grader="agreement", seed=0, write_every_s=0.05,
                refresh_s=0.05,
            ),
        )  # fmt: skip
        with Proxy(settings) as proxy:
            client = sync_client(proxy.url)
            loop = proxy.state.loop
            assert loop is not None and loop.shadow is not None
            shadow = loop.shadow
            served = [ask(client, i) for i in range(600)]
            assert set(served) == {"big"}  # version 1 answers every request with the baseline
            wait_for(lambda: shadow.pending == 0, what="the shadow queue to empty")
            assert loop.writer.wait_written()
            shadow_calls = dict(up.model_counts)
            assert shadow_calls["wrong"] * 4 < shadow_calls["cheap"], (
                shadow_calls,
                shadow.outcomes,
            )
            assert shadow_calls["cheap"] >= 200, shadow.outcomes  # every sampled request asked it

            explore = wait_for(
                lambda: status_of(proxy, "desk").get("explore"), what="the explore status"
            )
            by_model = {c["model"]: c for c in explore["candidates"]}
            assert explore["open"] == ["cheap"] and by_model["wrong"]["state"] == "dropped"
            assert by_model["wrong"]["reason"] and by_model["cheap"]["proven"]
            assert "is proven on" in explore["summary"]

            # `tradeoff status` says the same, from the store
            proxy.flush()
            capsys.readouterr()
            assert tradeoff.main(["status", "desk", "--db", str(db)]) == 0
            out = capsys.readouterr().out
            assert "wrong: dropped after" in out and "is proven on" in out

            code = tradeoff.main(
                ["refit", "--policy", "desk", "--promote", "--trials", "5", "--db", str(db)]
            )
            assert code == 0
            wait_for(
                lambda: proxy.state.policies.current["desk"].version == 2,
                what="the proxy to pick up version 2",
            )
            after = [ask(client, 1000 + i) for i in range(100)]
            assert after.count("cheap") >= 80 and "wrong" not in after, after

            # exploring goes on after the promotion, at a lower rate: a candidate added now is
            # asked on a quarter of the sampled requests
            code = tradeoff.main(
                ["explore", "desk", "--baseline", "big", "--candidates", "later",
                 "--require", REQUIRE, "--config", str(config), "--db", str(db)]
            )  # fmt: skip
            assert code == 0
            wait_for(
                lambda: "later" in getattr(loop.exploring.explorers.get("desk"), "open", ()),
                what="the proxy to explore the candidate added",
            )
            before = dict(up.model_counts)
            more = [ask(client, 2000 + i) for i in range(200)]
            wait_for(lambda: shadow.pending == 0, what="the shadow queue to empty")
            sampled = up.model_counts["big"] - before["big"]  # the monitor's baseline calls
            later = up.model_counts["later"]
            assert set(more) == {"cheap"} and sampled > 50
            assert 0 < later < 0.6 * sampled, (later, sampled)


@pytest.mark.slow
def test_two_replicas_on_postgres_make_one_decision(
    tmp_path: Path, pg_url: str, replicas: Any
) -> None:
    """Two `tradeoff serve` processes explore one policy on one PostgreSQL store: each races on
    its own answers and the other's; the drop is recorded once and both report that one; the
    refit promotes on their pooled traffic and both replicas serve the new version."""
    rules = [Rule(model="big", reply="42"), Rule(model="cheap", reply="42"),
             Rule(model="wrong", reply="41"), Rule(model="later", reply="42")]  # fmt: skip
    with Upstream(rules) as up:
        config = cold_start_models(tmp_path, up.url)
        code = tradeoff.main(
            ["explore", "desk", "--baseline", "big", "--candidates", "cheap,wrong",
             "--require", REQUIRE, "--config", str(config), "--db", pg_url]
        )  # fmt: skip
        assert code == 0
        args = ["--config", str(config), "--db", pg_url, "--policy", "desk",
                "--shadow", "0.5", "--shadow-grader", "agreement"]  # fmt: skip
        both = [replicas(args), replicas(args)]
        clients = [sync_client(r.url) for r in both]
        served = [ask(clients[i % 2], i) for i in range(400)]
        assert set(served) == {"big"}

        def explored() -> list[dict[str, Any]] | None:
            docs = [r.get("/tradeoff/status")["policies"][0].get("explore") for r in both]
            done = all(d and d["open"] == ["cheap"] and d["requests"] >= 150 for d in docs)
            return docs if done else None

        first, second = wait_for(explored, 60, "both replicas to drop wrong and read the pairs")
        drops = [{c["model"]: c for c in d["candidates"]}["wrong"] for d in (first, second)]
        assert drops[0]["state"] == "dropped" and drops[0]["dropped_after"] > 0
        assert (drops[0]["dropped_after"], drops[0]["reason"]) == (
            drops[1]["dropped_after"],
            drops[1]["reason"],
        )  # one decision: the one recorded first
        with open_store(pg_url).connect() as con:
            rows = con.execute(
                "SELECT model, after_items FROM adaptive_drops WHERE dataset = 'traffic-desk'"
            ).fetchall()
        assert rows == [("wrong", drops[0]["dropped_after"])]
        assert up.model_counts["wrong"] * 4 < up.model_counts["cheap"], dict(up.model_counts)

        code = tradeoff.main(
            ["refit", "--policy", "desk", "--promote", "--trials", "5", "--db", pg_url]
        )
        assert code == 0
        wait_for(
            lambda: all(r.get("/tradeoff/status")["policies"][0]["version"] == 2 for r in both),
            30,
            "both replicas to serve version 2",
        )
        after = [ask(clients[i % 2], 1000 + i) for i in range(40)]
        assert set(after) == {"cheap"}
