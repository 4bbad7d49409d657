"""Replicas on PostgreSQL: added latency and throughput of 1 and 2 `tradeoff serve` replicas on
one PostgreSQL store, against 1 replica on a DuckDB file, in the same run; and what sharing
costs per request (limits, cooldowns).

Targets, each in front of the same upstream stand-in (`python -m tests.support.upstream`, its
own process, no artificial delay), all started in this run:

    direct        the client calls the upstream itself (the floor)
    duckdb        one `tradeoff serve` on a DuckDB file
    pg-1          one `tradeoff serve` on a PostgreSQL database
    pg-2          two `tradeoff serve` on that database; the client deals its connections
                  between them (no balancer process: its cost would not be the replicas')
    duckdb+keys   `duckdb` with a limited client key (`--keys`): limits counted in memory
    pg-1+keys     `pg-1` with the same key: every request admitted and settled in PostgreSQL
    pg-2+keys     `pg-2` with it: the replicas share the key's counts

PostgreSQL is a throwaway local cluster with its durable defaults (fsync on), on the same
machine. Latency: sequential requests, targets interleaved round by round; "added" = target
minus direct. Throughput: a closed loop at each concurrency for a few seconds, targets taking
turns, the median of a few rounds, with the servers' CPU time per request (all their processes,
from /proc). Micro: the per-request price of a shared cooldown lookup (a PostgreSQL query)
against the local one, and of an admission in each limits backend.

    python benchmarks/bench_replicas.py     # writes benchmarks/results/replicas.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_proxy import (  # noqa: E402
    NODELAY,
    cpu_seconds,
    free_port,
    pct,
    read_response,
    start_upstream,
    wait_ready,
)

KEY = "sk-bench-replicas-0123456789"
BODY = {"model": "bench", "messages": [{"role": "user", "content": "say something short"}]}
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def start(work: Path, pg_url: str, procs: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    """The upstream and every replica; {target: (urls, pids)}."""
    upstream, params = start_upstream(procs)
    models = {"model_list": [
        {"model_name": "bench", "litellm_params": {"model": "hosted_vllm/bench", **params}},
    ]}  # fmt: skip
    (work / "models.yaml").write_text(yaml.safe_dump(models))
    keys = {"keys": [{"name": "bench", "key": "os.environ/BENCH_KEY", "rpm": 10_000_000,
                      "budget_usd": 1e9, "budget_period": "month"}]}  # fmt: skip
    (work / "keys.yaml").write_text(yaml.safe_dump(keys))
    targets: dict[str, Any] = {"direct": ([upstream], [procs[0].pid])}
    layout = {
        "duckdb": (str(work / "plain.duckdb"), 1, False),
        "pg-1": (pg_url + "_one", 1, False),
        "pg-2": (pg_url + "_two", 2, False),
        "duckdb+keys": (str(work / "keys.duckdb"), 1, True),
        "pg-1+keys": (pg_url + "_one_keys", 1, True),
        "pg-2+keys": (pg_url + "_two_keys", 2, True),
    }
    for name, (db, replicas, keyed) in layout.items():
        urls, pids = [], []
        for i in range(replicas):
            port = free_port()
            extra = ["--keys", str(work / "keys.yaml")] if keyed else ["--api-key", KEY]
            spool = work / f"spool-{name}-{i}"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tradeoff", "serve", "--port", str(port),
                 "--config", str(work / "models.yaml"), "--db", db, *extra],
                cwd=ROOT, env={**os.environ, "BENCH_KEY": KEY, "TRADEOFF_SPOOL_DIR": str(spool)},
                **QUIET,
            ))  # fmt: skip
            wait_ready(f"http://127.0.0.1:{port}/health", procs[-1])
            urls.append(f"http://127.0.0.1:{port}/v1")
            pids.append(procs[-1].pid)
        targets[name] = (urls, pids)
    return targets


def latency(targets: dict[str, Any], n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {t: [] for t in targets}
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY), timeout=30) as http:
        for i in range(n + 20):
            for target, (urls, _) in targets.items():
                url = urls[i % len(urls)]
                started = time.perf_counter()
                response = http.post(f"{url}/chat/completions", json=BODY, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (target, response.status_code)
                if i >= 20:
                    samples[target].append(elapsed * 1000)
    return samples


async def closed_loop(urls: list[str], concurrency: int, seconds: float) -> tuple[float, int]:
    """`concurrency` keep-alive connections dealt over `urls`, each sending back to back."""
    payload = json.dumps(BODY).encode()
    done = 0

    def request(url: httpx.URL) -> bytes:
        return (
            f"POST {url.path}/chat/completions HTTP/1.1\r\nhost: {url.host}:{url.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            f"authorization: Bearer {KEY}\r\n\r\n"
        ).encode() + payload

    async def worker(i: int, stop_at: float) -> None:
        nonlocal done
        url = httpx.URL(urls[i % len(urls)])
        reader, writer = await asyncio.open_connection(url.host, url.port)
        message = request(url)
        try:
            while time.perf_counter() < stop_at:
                writer.write(message)
                status = await read_response(reader)
                assert status == 200, status
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(i, time.perf_counter() + 0.5) for i in range(concurrency)))
    done = 0
    started = time.perf_counter()
    await asyncio.gather(*(worker(i, started + seconds) for i in range(concurrency)))
    return done / (time.perf_counter() - started), done


def throughputs(
    targets: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    runs = {t: {c: [] for c in args.concurrency} for t in targets}
    cpu = {t: dict.fromkeys(args.concurrency, 0.0) for t in targets}
    served = {t: dict.fromkeys(args.concurrency, 0) for t in targets}
    for c in args.concurrency:
        for _ in range(args.rounds):
            for target, (urls, pids) in targets.items():
                before = sum(cpu_seconds(p) for p in pids)
                rps, done = asyncio.run(closed_loop(urls, c, args.seconds))
                cpu[target][c] += sum(cpu_seconds(p) for p in pids) - before
                served[target][c] += done
                runs[target][c].append(rps)
    median = {t: {c: statistics.median(v) for c, v in by.items()} for t, by in runs.items()}
    per_request = {
        t: {c: cpu[t][c] / max(1, served[t][c]) * 1e6 for c in args.concurrency} for t in targets
    }
    return median, per_request


def micro(pg_url: str, n: int = 2000) -> dict[str, float]:
    """Microseconds per call, in one process: a cooldown lookup (local dict / a PostgreSQL
    query per request), an admission (memory / PostgreSQL limits), sequential and 16 at once."""
    import psycopg

    from tradeoff.router.fallback import Cooldowns
    from tradeoff.router.keys.keyfile import KeySpec
    from tradeoff.router.keys.limits import MemoryLimits
    from tradeoff.router.keys.limits_pg import PostgresLimits

    out: dict[str, float] = {}
    cooldowns = Cooldowns(10.0)
    cooldowns.failed("b")
    started = time.perf_counter()
    for _ in range(n * 10):
        cooldowns.order(["a", "b", "c"])
    out["cooldown_local_us"] = (time.perf_counter() - started) / (n * 10) * 1e6
    key = KeySpec("bench", "s", rpm=10_000_000, budget_usd=1e9)

    async def shared() -> None:
        con = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
        await con.execute(
            "CREATE TABLE IF NOT EXISTS bench_cooldowns (model TEXT PRIMARY KEY, until DOUBLE "
            "PRECISION)"
        )
        await con.execute("INSERT INTO bench_cooldowns VALUES ('b', 1e12) ON CONFLICT DO NOTHING")
        began = time.perf_counter()
        for _ in range(n):
            cur = await con.execute(
                "SELECT model FROM bench_cooldowns WHERE model = ANY(%s) AND until > %s",
                [["a", "b", "c"], time.time()],
            )
            await cur.fetchall()
        out["cooldown_postgres_us"] = (time.perf_counter() - began) / n * 1e6
        await con.close()
        memory = MemoryLimits([key])
        began = time.perf_counter()
        for i in range(n):
            memory.settle(await memory.admit(key, 1000, f"m{i}"), 900)
        out["admit_settle_memory_us"] = (time.perf_counter() - began) / n * 1e6
        limits = PostgresLimits(pg_url, [key])
        await limits.start()
        began = time.perf_counter()
        for i in range(n):
            limits.settle(await limits.admit(key, 1000, f"s{i}"), 900)
        await limits._flush()
        out["admit_settle_postgres_us"] = (time.perf_counter() - began) / n * 1e6

        async def one(i: int) -> None:
            limits.settle(await limits.admit(key, 1000, f"c{i}"), 900)

        began = time.perf_counter()
        for batch in range(n // 16):
            await asyncio.gather(*(one(batch * 16 + j) for j in range(16)))
        await limits._flush()
        out["admit_settle_postgres_16_at_once_us"] = (time.perf_counter() - began) / n * 1e6
        await limits.stop()

    asyncio.run(shared())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per target")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/replicas.json"))
    args = parser.parse_args()
    from tests.support.postgres import Cluster, find_bin
    from tradeoff.evals.store import open_store

    bin_dir = find_bin()
    if bin_dir is None:
        sys.exit("PostgreSQL's server binaries are needed: apt-get install postgresql")
    cluster = Cluster(bin_dir, durable=True).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        base = cluster.create_database("bench")
        import psycopg

        with psycopg.connect(cluster.url("postgres"), autocommit=True) as con:
            for suffix in ("_one", "_two", "_one_keys", "_two_keys"):
                con.execute(f'CREATE DATABASE "{base.rsplit("/", 1)[1]}{suffix}"')
        for suffix in ("_one", "_two", "_one_keys", "_two_keys"):
            open_store(base + suffix)  # migrated once, before the replicas race to it
        with tempfile.TemporaryDirectory() as tmp:
            try:
                targets = start(Path(tmp), base, procs)
                lat = latency(targets, args.requests)
                rps, cpu = throughputs(targets, args)
                small = micro(base + "_one")
            finally:
                for proc in reversed(procs):
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    try:
                        proc.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    finally:
        cluster.stop()
    report(targets, lat, rps, cpu, small, args)


def report(
    targets: dict[str, Any],
    lat: dict[str, list[float]],
    rps: dict[str, dict[int, float]],
    cpu: dict[str, dict[int, float]],
    small: dict[str, float],
    args: argparse.Namespace,
) -> None:
    p50, p99 = pct(lat["direct"], 0.5), pct(lat["direct"], 0.99)
    rows = []
    header = f"{'target':12} {'p50 ms':>7} {'+p50':>6} {'p99 ms':>7} {'+p99':>6}"
    header += "".join(f" {'rps@' + str(c):>8}" for c in args.concurrency)
    header += "".join(f" {'cpu@' + str(c):>8}" for c in args.concurrency)
    print(header)
    for target in targets:
        row = {
            "target": target,
            "replicas": len(targets[target][0]),
            "p50_ms": pct(lat[target], 0.5),
            "p99_ms": pct(lat[target], 0.99),
            "added_p50_ms": pct(lat[target], 0.5) - p50,
            "added_p99_ms": pct(lat[target], 0.99) - p99,
            "rps": {str(c): v for c, v in rps[target].items()},
            "cpu_us_per_request": {str(c): v for c, v in cpu[target].items()},
        }
        rows.append(row)
        line = (f"{target:12} {row['p50_ms']:7.2f} {row['added_p50_ms']:6.2f} "
                f"{row['p99_ms']:7.2f} {row['added_p99_ms']:6.2f}")  # fmt: skip
        line += "".join(f" {v:8.0f}" for v in rps[target].values())
        line += "".join(f" {v:8.0f}" for v in cpu[target].values())
        print(line)
    ratios = {
        name: {str(c): rps[name][c] / rps["duckdb"][c] for c in args.concurrency}
        for name in ("pg-1", "pg-2", "pg-1+keys", "pg-2+keys")
    }
    for name, by_c in ratios.items():
        print(
            f"{name} / duckdb throughput: " + ", ".join(f"x{v:.2f} @{c}" for c, v in by_c.items())
        )
    print("per call: " + ", ".join(f"{k} {v:.1f}" for k, v in small.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": "python benchmarks/bench_replicas.py " + " ".join(sys.argv[1:]),
        "requests": args.requests, "seconds": args.seconds, "rounds": args.rounds,
        "rows": rows, "throughput_vs_duckdb": ratios, "micro_us": small,
        "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
    }, indent=2))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
