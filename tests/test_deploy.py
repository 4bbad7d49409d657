"""The documented deployment (docs/deploy/): its files name only real options, and the topology
it describes, two replicas behind a balancer on one PostgreSQL store, runs, started without
Docker from the compose file's own replica command. Every command that reads the store
(`status`, `replay`, `refit`, the dashboard's queries) then reads the same URL the replicas
write, by `--db` or by `TRADEOFF_DB`."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI

from tests.router.loop.test_loop import wait_for
from tests.router.replicas.support import Start
from tests.support.balancer import Balancer
from tests.support.upstream import Rule, Upstream
from tests.test_user_path import answer, write_items, write_models
from tradeoff import cli as tradeoff
from tradeoff.dashboard.traffic_queries import traffic_totals
from tradeoff.evals.store import Store

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"
TEAM_KEY = "sk-team-a-test"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def flags_of(command: str) -> set[str]:
    return {p for param in tradeoff.assemble().commands[command].params for p in param.opts}


def systemd_command() -> list[str]:
    text = (DEPLOY / "systemd" / "tradeoff-serve.service").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))[1:]


def test_the_deployment_files_name_only_real_options() -> None:
    doc = compose()
    replica = doc["x-replica"]
    for command in (replica["command"], doc["services"]["dashboard"]["command"], systemd_command()):
        flags = {a.split("=")[0] for a in command[1:] if a.startswith("--")}
        assert flags <= flags_of(command[0]), command
    # One store for every replica and the dashboard; each replica its own spool volume.
    url = replica["environment"]["TRADEOFF_DB"]
    assert url.startswith("postgresql://")
    assert doc["services"]["dashboard"]["environment"]["TRADEOFF_DB"] == url
    spools = [
        next(v for v in doc["services"][name]["volumes"] if v.endswith(":/var/lib/tradeoff/spool"))
        for name in ("proxy-1", "proxy-2")
    ]
    assert len(set(spools)) == 2
    assert replica["environment"]["TRADEOFF_SPOOL_DIR"] == "/var/lib/tradeoff/spool"
    # The example keys file is one `serve --keys` accepts.
    from tradeoff.router.keys.keyfile import load_keys

    assert load_keys(DEPLOY / "config" / "keys.yaml", env={"TEAM_A_KEY": "x"}).keys
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server proxy-1:4000" in nginx and "server proxy-2:4000" in nginx


def test_nginx_accepts_the_balancer_config(tmp_path: Path) -> None:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (the topology test uses a Python balancer)")
    text = (DEPLOY / "nginx.conf").read_text()
    text = text.replace("proxy-1:4000", "127.0.0.1:4001").replace("proxy-2:4000", "127.0.0.1:4002")
    config = tmp_path / "nginx.conf"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    config.write_text(text.replace("listen 4000;", f"listen 127.0.0.1:{port};"))
    result = subprocess.run(
        ["nginx", "-t", "-c", str(config), "-p", str(tmp_path), "-g", f"pid {tmp_path}/pid;"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "test is successful" in result.stderr, result.stderr


def cli(*argv: str) -> None:
    assert tradeoff.main(list(argv)) == 0, argv


def replica_args(config: Path, keys: Path) -> list[str]:
    """The compose file's replica command, minus the address (each replica takes a free port)
    and with its files where this test wrote them."""
    command = list(compose()["x-replica"]["command"])
    assert command[0] == "serve"
    args: list[str] = []
    rest = iter(command[1:])
    for arg in rest:
        if arg in ("--host", "--port"):
            next(rest)
            continue
        args.append(arg)
        if arg == "--config":
            next(rest)
            args.append(str(config))
        elif arg == "--keys":
            next(rest)
            args.append(str(keys))
    return args


@pytest.mark.slow
def test_the_documented_topology_serves_and_every_reader_shares_its_store(
    tmp_path: Path,
    pg_url: str,
    replicas: Start,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    items, config = tmp_path / "items.jsonl", tmp_path / "models.yaml"
    write_items(items)
    with Upstream([Rule(reply=answer)]) as upstream:
        write_models(config, upstream.url)
        # A stored policy named as the compose command serves it, fitted on this store.
        cli("import", str(items), "--dataset", "qa", "--format", "items", "--db", pg_url)
        cli("eval", "--dataset", "qa", "--models", "cheap,strong", "--config", str(config),
            "--db", pg_url, "--no-progress")  # fmt: skip
        cli("fit", "--dataset", "qa", "--baseline", "strong", "--require",
            "accuracy >= 95% of baseline", "--trials", "40", "--name", "support",
            "--db", pg_url)  # fmt: skip

        # The replicas, as compose starts them: the store and the key secret by environment,
        # each replica its own spool folder (a volume each in compose.yaml).
        monkeypatch.setenv("TRADEOFF_DB", pg_url)
        monkeypatch.setenv("TEAM_A_KEY", TEAM_KEY)
        args = replica_args(config, DEPLOY / "config" / "keys.yaml")
        started = []
        for name in ("spool-1", "spool-2"):
            monkeypatch.setenv("TRADEOFF_SPOOL_DIR", str(tmp_path / name))
            started.append(replicas(args))
        backends = [("127.0.0.1", httpx.URL(r.url).port or 0) for r in started]
        sent = 24
        with Balancer(backends) as balancer:
            # No keep-alive: each request a new connection, so the balancer spreads them.
            http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)
            client = OpenAI(
                base_url=f"http://127.0.0.1:{balancer.port}/v1",
                api_key=TEAM_KEY,
                http_client=http,
                max_retries=0,
            )
            for i in range(sent):
                raw = client.chat.completions.with_raw_response.create(
                    model="support",
                    messages=[{"role": "user", "content": f"easy question: what is {i} plus one?"}],
                )
                assert raw.headers["x-tradeoff-policy"] == "support"
            assert sorted(balancer.connections.values()) == [sent // 2, sent // 2]

    store = Store(pg_url)

    def logged() -> bool:
        with store.connect() as con:
            return int(con.execute("SELECT count(*) FROM requests").fetchone()[0]) == sent  # type: ignore[index]

    wait_for(logged, 20, "both replicas' request logs")
    # `tradeoff status`, by TRADEOFF_DB: the policy's live figures and the key's spend.
    capsys.readouterr()
    cli("status", "--json")
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["policies"]] == ["support"]
    assert doc["policies"][0]["requests"] == sent
    key = next(k for k in doc["keys"] if k["name"] == "team-a")
    assert key["requests"] == sent and key["spent_usd"] > 0
    # `replay` and `refit` by --db, on the same store.
    monkeypatch.delenv("TRADEOFF_DB")
    cli("replay", "--policy", "support", "--db", pg_url, "--json")
    replay = json.loads(capsys.readouterr().out)
    assert replay["n"] > 0 and replay["accuracy"] > 0.9
    cli("refit", "--policy", "support", "--trials", "10", "--db", pg_url)
    assert "refit of support" in capsys.readouterr().out
    # The dashboard's traffic page query, on the same store.
    with store.connect(read_only=True) as con:
        totals = traffic_totals(con, None, "support")
    assert (
        totals["requests"] == sent
        and totals["client_errors"] == 0
        and totals["upstream_failures"] == 0
    )
    # Nothing runs on past the test: the fixture stops both replicas (supervisor and workers).
    assert all(r.process.poll() is None for r in started)
