"""Per-key limits on one proxy (the in-memory backend, a DuckDB store): keys.yaml, 429s with
Retry-After in OpenAI's shape through the official client, exact budgets, spend per key, and a
restart that must not reset a budget. The shared backend is tests/router/test_replicas.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.router.conftest import async_client, sync_client
from tests.router.support import Proxy, write_models
from tests.support.upstream import Rule, Upstream
from tradeoff import main as tradeoff_main
from tradeoff.evals.errors import ConfigError
from tradeoff.router.keys.keyfile import KeySpec, load_keys, period_end, period_start
from tradeoff.router.keys.limits import MemoryLimits, Refused
from tradeoff.router.keys.usage import key_spend
from tradeoff.router.settings import Settings

WORDS = 50  # every answer of the "k-" models is this many tokens
PRICE = 2e-6  # USD per output token (input is free): each answer costs exactly WORDS * PRICE
COST = WORDS * PRICE
HI = [{"role": "user", "content": "hello"}]


def write_keys(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"keys": list(entries)}))
    return path


def priced_models(path: Path, url: str, names: list[str]) -> Path:
    """Models whose answers cost exactly COST: free input, WORDS output tokens at PRICE."""
    extra = {n: {"input_cost_per_token": 0.0, "output_cost_per_token": PRICE} for n in names}
    return write_models(path, url, names, **extra)


def answer_rules(*names: str, delay_s: float = 0.0) -> list[Rule]:
    return [Rule(model=n, reply=" ".join(["w"] * WORDS), delay_s=delay_s) for n in names]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"name": "a", "key": "sk-literal"}, "os.environ/NAME"),
        ({"name": "a", "key": "os.environ/NOT_SET_ANYWHERE"}, "NOT_SET_ANYWHERE"),
        ({"name": "a", "key": "os.environ/K_A", "rpm": 0}, "rpm must be a whole number"),
        ({"name": "a", "key": "os.environ/K_A", "rpm": 1.5}, "rpm must be a whole number"),
        ({"name": "a", "key": "os.environ/K_A", "budget_usd": -1}, "budget_usd must be"),
        ({"name": "a", "key": "os.environ/K_A", "budget_period": "year"}, "hour, day, week"),
        ({"name": "a", "key": "os.environ/K_A", "limit": 3}, "unknown field(s) limit"),
        ({"key": "os.environ/K_A"}, "has no name"),
    ],
)
def test_bad_keys_files_say_what_to_fix(tmp_path: Path, entry: dict[str, Any], says: str) -> None:
    path = write_keys(tmp_path / "keys.yaml", entry)
    with pytest.raises(ConfigError, match=None) as raised:
        load_keys(path, env={"K_A": "secret-a"})
    assert says in str(raised.value)


def test_two_names_for_one_secret_are_refused(tmp_path: Path) -> None:
    path = write_keys(
        tmp_path / "keys.yaml",
        {"name": "a", "key": "os.environ/K_A"},
        {"name": "b", "key": "os.environ/K_B"},
    )
    with pytest.raises(ConfigError, match="share one secret"):
        load_keys(path, env={"K_A": "same", "K_B": "same"})


def test_serve_with_a_bad_keys_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = write_models(tmp_path / "models.yaml", "http://127.0.0.1:9/v1", ["m"])
    keys = write_keys(tmp_path / "keys.yaml", {"name": "a", "key": "os.environ/K_UNSET_13"})
    code = tradeoff_main(
        ["serve", "--config", str(models), "--db", str(tmp_path / "db.duckdb"), "--keys", str(keys)]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "K_UNSET_13" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_periods_are_utc_calendar_windows() -> None:
    now = dt.datetime(2026, 2, 18, 13, 45, 12)  # a Wednesday
    assert period_start("hour", now) == dt.datetime(2026, 2, 18, 13)
    assert period_start("day", now) == dt.datetime(2026, 2, 18)
    assert period_start("week", now) == dt.datetime(2026, 2, 16)
    assert period_start("month", now) == dt.datetime(2026, 2, 1)
    assert period_end("month", dt.datetime(2026, 2, 1)) == dt.datetime(2026, 3, 1)
    assert period_end("week", dt.datetime(2026, 2, 16)) == dt.datetime(2026, 2, 23)


def test_memory_limits_count_reservations_in_flight() -> None:
    """Budget 3 units: two in flight hold 2; a third fits; a fourth is told to retry in 1 s
    (the others may settle lower) until they settle at their full cost: then the period."""
    key = KeySpec("a", "s", budget_usd=3e-9 * 1000)  # 3000 nano-USD
    limits = MemoryLimits([key])
    now = dt.datetime(2026, 2, 18, 13, 45, 12)
    first = limits.admit_now(key, 1000, now)
    limits.admit_now(key, 1000, now)
    limits.admit_now(key, 1000, now)
    with pytest.raises(Refused) as raised:
        limits.admit_now(key, 1000, now)
    assert raised.value.retry_after_s == 1
    limits.settle(first, 400)  # cheaper than reserved: room for one more
    limits.admit_now(key, 600, now)
    with pytest.raises(Refused):
        limits.admit_now(key, 1, now)


def test_rpm_and_budget_through_the_official_client(tmp_path: Path) -> None:
    with Upstream(answer_rules("k-model")) as upstream:
        env = {"K_RPM": "sk-rpm", "K_BUDGET": "sk-budget", "K_FREE": "sk-free"}
        keys = write_keys(
            tmp_path / "keys.yaml",
            {"name": "rpm-team", "key": "os.environ/K_RPM", "rpm": 3},
            {"name": "budget-team", "key": "os.environ/K_BUDGET", "budget_usd": 4 * COST},
            {"name": "free-team", "key": "os.environ/K_FREE"},
        )
        settings = Settings(
            config_path=priced_models(tmp_path / "models.yaml", upstream.url, ["k-model"]),
            db_path=tmp_path / "db.duckdb",
            keys_path=keys,
            log_flush_s=0.02,
        )
        with pytest.MonkeyPatch.context() as env_patch:
            for name, value in env.items():
                env_patch.setenv(name, value)
            proxy = Proxy(settings).start()
        try:
            wait_for_fresh_minute()
            rpm = sync_client(proxy.url, api_key="sk-rpm")
            for _ in range(3):
                rpm.chat.completions.create(model="k-model", messages=HI, max_tokens=WORDS)
            with pytest.raises(openai.RateLimitError) as raised:
                rpm.chat.completions.create(model="k-model", messages=HI, max_tokens=WORDS)
            error = raised.value
            assert error.status_code == 429
            assert error.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
            assert error.body["type"] == "rate_limit_error"  # type: ignore[index]
            assert 1 <= int(error.response.headers["retry-after"]) <= 60

            budget = sync_client(proxy.url, api_key="sk-budget")
            for _ in range(4):  # exactly four fit (each reserves and costs COST)
                budget.chat.completions.create(model="k-model", messages=HI, max_tokens=WORDS)
            with pytest.raises(openai.RateLimitError) as raised:
                budget.chat.completions.create(model="k-model", messages=HI, max_tokens=WORDS)
            assert raised.value.body["code"] == "budget_exceeded"  # type: ignore[index]
            left = int(raised.value.response.headers["retry-after"])
            assert left > 60  # the rest of the month, not "a moment"

            free = sync_client(proxy.url, api_key="sk-free")
            for _ in range(6):  # a named key without limits: counted, never refused
                free.chat.completions.create(model="k-model", messages=HI, max_tokens=WORDS)
            with pytest.raises(openai.AuthenticationError):
                sync_client(proxy.url, api_key="sk-unknown").chat.completions.create(
                    model="k-model", messages=HI
                )
            proxy.flush()
            rows = proxy.rows("key_name IS NOT NULL")
            by_key = {(r["key_name"], r["status"]) for r in rows}
            assert by_key == {
                ("rpm-team", 200), ("rpm-team", 429), ("budget-team", 200),
                ("budget-team", 429), ("free-team", 200),
            }  # fmt: skip
            spend = {k["name"]: k for k in key_spend(proxy.state.request_log.store)}
            assert spend["budget-team"]["spent_usd"] == pytest.approx(4 * COST)
            assert spend["budget-team"]["budget_left_usd"] == pytest.approx(0.0, abs=1e-12)
            assert spend["budget-team"]["refused"] == 1
            assert spend["rpm-team"]["requests"] == 4 and spend["rpm-team"]["refused"] == 1
            assert spend["free-team"]["spent_usd"] == pytest.approx(6 * COST)
            assert spend["free-team"]["budget_usd"] is None
            metrics = proxy.state.metrics.render()
            assert 'tradeoff_key_refusals_total{key="budget-team",limit="budget"} 1' in metrics
        finally:
            proxy.stop()

        # A restart counts the period's spend from the request log: the budget stays spent.
        with pytest.MonkeyPatch.context() as env_patch:
            for name, value in env.items():
                env_patch.setenv(name, value)
            proxy = Proxy(settings).start()
        try:
            budget = sync_client(proxy.url, api_key="sk-budget")
            with pytest.raises(openai.RateLimitError):
                budget.chat.completions.create(model="k-model", messages=HI, max_tokens=WORDS)
        finally:
            proxy.stop()


def test_a_budget_of_k_admits_k_of_many_concurrent_requests(tmp_path: Path) -> None:
    k = 7
    with Upstream(answer_rules("k-slow", delay_s=0.05)) as upstream:
        keys = write_keys(
            tmp_path / "keys.yaml", {"name": "t", "key": "os.environ/K_T", "budget_usd": k * COST}
        )
        settings = Settings(
            config_path=priced_models(tmp_path / "models.yaml", upstream.url, ["k-slow"]),
            db_path=tmp_path / "db.duckdb",
            keys_path=keys,
        )
        with pytest.MonkeyPatch.context() as env_patch:
            env_patch.setenv("K_T", "sk-t")
            proxy = Proxy(settings).start()
        try:

            async def burst() -> list[int]:
                client = async_client(proxy.url, api_key="sk-t")

                async def one() -> int:
                    try:
                        await client.chat.completions.create(
                            model="k-slow", messages=HI, max_tokens=WORDS
                        )
                    except openai.RateLimitError:
                        return 429
                    return 200

                return await asyncio.gather(*(one() for _ in range(5 * k)))

            statuses = asyncio.run(burst())
            assert statuses.count(200) == k
            assert statuses.count(429) == 4 * k
        finally:
            proxy.stop()


def wait_for_fresh_minute(margin_s: float = 15.0) -> None:
    """Start a per-minute count early in a minute, so the test never straddles two."""
    import time

    second = dt.datetime.now(dt.UTC).second
    if second > 60 - margin_s:
        time.sleep(61 - second)
