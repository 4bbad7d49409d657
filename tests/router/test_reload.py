"""Hot reload: an edited policy file takes effect under load without a dropped request."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.router.conftest import async_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Upstream
from tradeoff.router.settings import Settings


async def test_reload_under_load_drops_nothing(tmp_path: Path, upstream: Upstream) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap", "strong"])
    policy = write_policy(tmp_path / "p.json", "live", "single", {"model": "cheap"})
    settings = Settings(
        policy_paths=(policy,),
        config_path=config,
        db_path=tmp_path / "db.duckdb",
        reload_interval_s=0.05,
        log_flush_s=0.05,
    )
    with Proxy(settings) as proxy:
        client = async_client(proxy.url)
        served: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        stop = asyncio.Event()

        async def worker() -> None:
            while not stop.is_set():
                raw = await client.chat.completions.with_raw_response.create(
                    model="live", messages=[{"role": "user", "content": "hi"}]
                )
                statuses[raw.status_code] += 1
                served[raw.headers["x-tradeoff-model"]] += 1

        async def until(condition: Callable[[], bool]) -> None:
            for _ in range(400):
                if condition():
                    return
                await asyncio.sleep(0.025)
            raise AssertionError(f"timed out; served {served}")

        workers = [asyncio.ensure_future(worker()) for _ in range(8)]
        await until(lambda: served["cheap"] >= 20)
        write_policy(policy, "live", "single", {"model": "strong"})
        await until(lambda: served["strong"] > 0)  # the poller swapped the policy in
        cheap_after_swap = served["cheap"]
        await until(lambda: served["strong"] >= 20)
        # a broken file keeps the last good policy and says why
        policy.write_text('{"version": 1, "name": "live", "family": "nope", "params": {}}')
        await asyncio.sleep(0.4)
        stop.set()
        await asyncio.gather(*workers)
        await client.close()
        assert served["cheap"] > 0 and served["strong"] > 0, (served, statuses)
        # only requests already planned when the policy swapped (at most 8 in flight) end on cheap
        assert served["cheap"] - cheap_after_swap <= 8
        assert set(statuses) == {200}
        assert proxy.state.policies.reload_errors >= 1
        assert proxy.state.policies.current["live"].policy.models == ("strong",)
        metrics = httpx.get(f"{proxy.base}/metrics").text
        assert "tradeoff_policy_reload_errors 1" in metrics
        proxy.flush()
        assert len(proxy.rows()) == sum(statuses.values())


def test_reload_rejects_a_policy_over_unconfigured_models(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap"])
    policy = write_policy(tmp_path / "p.json", "live", "single", {"model": "cheap"})
    settings = Settings(policy_paths=(policy,), config_path=config, db_path=tmp_path / "db")
    proxy = Proxy(settings)  # not started: reload() is called directly
    write_policy(policy, "live", "single", {"model": "ghost"})
    problems = proxy.state.policies.reload()
    assert len(problems) == 1 and "ghost" in problems[0] and "models.yaml" in problems[0]
    assert proxy.state.policies.current["live"].policy.models == ("cheap",)
    assert json.loads(policy.read_text())["params"] == {"model": "ghost"}
