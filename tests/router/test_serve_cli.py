"""`tradeoff serve` as a real process: SIGHUP reloads, SIGTERM flushes every row, bad options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.router.conftest import sync_client
from tests.router.support import serve_process, write_models, write_policy
from tests.support.processes import stop
from tests.support.upstream import Upstream
from tradeoff import main as tradeoff_main
from tradeoff.evals.store import Store

HI = [{"role": "user", "content": "what is 2 + 2"}]


def tradeoff(*args: str) -> list[str]:
    return [sys.executable, "-m", "tradeoff", *args]


@pytest.fixture
def served(tmp_path: Path, upstream: Upstream) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap", "strong"])
    write_policy(tmp_path / "p.json", "live", "single", {"model": "cheap"})
    process, url, _ = serve_process(
        ["--policy", str(tmp_path / "p.json"), "--config", str(config),
         "--db", str(tmp_path / "db.duckdb"), "--log-prompts", "--api-key", "k1"]
    )  # fmt: skip
    yield process, url, tmp_path
    stop(process)


def test_sighup_reloads_and_sigterm_flushes_every_row(
    served: tuple[subprocess.Popen[str], str, Path],
) -> None:
    process, url, work = served
    client = sync_client(url, api_key="k1")
    sent = 0
    for i in range(40):
        stream = i % 4 == 0
        out = client.chat.completions.create(model="live", messages=HI, stream=stream)
        if stream:
            list(out)  # type: ignore[arg-type]
        sent += 1
    policy = work / "p.json"
    before = os.stat(policy).st_mtime_ns
    write_policy(policy, "live", "single", {"model": "strong"})
    os.utime(policy, ns=(before, before))  # same mtime: only SIGHUP can notice the change
    time.sleep(1.5)
    raw = client.chat.completions.with_raw_response.create(model="live", messages=HI)
    sent += 1
    assert raw.headers["x-tradeoff-model"] == "cheap"
    process.send_signal(signal.SIGHUP)
    for _ in range(100):
        raw = client.chat.completions.with_raw_response.create(model="live", messages=HI)
        sent += 1
        if raw.headers["x-tradeoff-model"] == "strong":
            break
        time.sleep(0.05)
    assert raw.headers["x-tradeoff-model"] == "strong"
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    with Store(work / "db.duckdb").connect(read_only=True) as con:
        count, distinct, prompts = con.execute(
            "SELECT count(*), count(DISTINCT request_id), count(prompt) FROM requests"
        ).fetchone()  # type: ignore[misc]
    assert count == distinct == sent
    assert prompts == sent  # --log-prompts keeps the text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--config", "nowhere.yaml"], "not found"),
        (["--policy", "nowhere.json"], "policy file"),
        (["--timeout", "0"], "--timeout"),
        (["--max-body-bytes", "0"], "--max-body-bytes"),
        (["--api-key-file", "nowhere.txt"], "--api-key-file"),
        (["--policy", "ghost"], "no stored policy 'ghost'"),
        (["--shadow", "2"], "--shadow"),
        (["--on-violation", "baseline"], "--on-violation baseline needs --shadow"),
        (["--refit-every", "5m"], "--refit-every refits stored policies served by name"),
        (["--shadow", "1", "--shadow-grader", "judge:nobody"], "'nobody' is not in models.yaml"),
        (["--shadow", "1", "--shadow-grader", "nonsense"], "unknown grader 'nonsense'"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, upstream: Upstream, args: list[str], needle: str
) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap"])
    base = ["serve", "--port", "0", "--db", str(tmp_path / "db.duckdb"), "--config", str(config)]
    result = subprocess.run(
        tradeoff(*base, *args), capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_sigint_also_flushes_every_row(tmp_path: Path, upstream: Upstream) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap"])
    process, url, _ = serve_process(["--config", str(config), "--db", str(tmp_path / "db.duckdb")])
    try:
        client = sync_client(url)
        for _ in range(25):
            client.chat.completions.create(model="cheap", messages=HI)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) in (0, -signal.SIGINT, 130)
    finally:
        stop(process)
    with Store(tmp_path / "db.duckdb").connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM requests").fetchone() == (25,)


def test_registering_serve_imports_no_server_stack() -> None:
    # `tradeoff --help` registers `serve`; the proxy's stack loads only when it runs.
    code = (
        "import sys, click; from tradeoff.router import cli; cli.register(click.Group()); "
        "print(sorted({'aiohttp', 'pyarrow', 'starlette', 'uvicorn', 'tradeoff.router.app'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_serve_a_stored_policy_by_name_with_a_pairwise_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from tests.router.loop.test_loop import store_policy, wait_for
    from tests.support.upstream import Rule
    from tradeoff.evals.store import open_store

    # A judge with total position bias: it always prefers the first answer. Asked in both
    # orders, its verdicts cancel: every pair is a tie, the kept accuracy is 100%.
    rules = [Rule(model="judge", reply="Both fine.\nVERDICT: A"), Rule(reply="42")]
    with Upstream(rules) as up:
        config = write_models(tmp_path / "models.yaml", up.url, ["cheap", "strong", "judge"])
        db = tmp_path / "db.duckdb"
        store_policy(open_store(db), "desk", "cheap", "strong")
        process, url, _ = serve_process(
            [
                "--policy",
                "desk",
                "--config",
                str(config),
                "--db",
                str(db),
                "--shadow",
                "1",
                "--shadow-grader",
                "judge:judge",
            ]
        )
        try:
            client = sync_client(url)
            for _ in range(6):
                client.chat.completions.create(model="desk", messages=HI)
            base = url.removesuffix("/v1")

            def pairs() -> int:
                doc = httpx.get(f"{base}/tradeoff/status").json()
                return int(doc["policies"][0]["shadow_pairs"])

            wait_for(lambda: pairs() == 6, what="six judged pairs")
            live = httpx.get(f"{base}/tradeoff/status").json()["policies"][0]
            assert (live["name"], live["version"], live["kept_accuracy"]) == ("desk", 1, 1.0)
            assert up.model_counts["judge"] == 12  # two verdicts per pair
            health = httpx.get(f"{base}/health").json()
            assert health["policies"][0]["source"] == "store:desk"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    assert tradeoff_main(["status", "--db", str(db), "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)["policies"][0]
    assert stored["shadow_pairs"] == 6 and stored["kept_accuracy"] == 1.0
    assert stored["requests"] == 6 and stored["shadow_spend_usd"] > 0
