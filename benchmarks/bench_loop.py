"""The loop's costs and statistics, each beside a named alternative in the same run.

1. Client latency with shadowing on vs off: two `tradeoff serve` processes in front of the same
   upstream stand-in (its own process, 20 ms per answer), serving the same stored policy: without
   shadowing, with `--shadow 1.0` (every request re-sent to the baseline and graded by
   agreement: the worst case), with `--shadow 0.1`, and without again as the noise floor (two
   identical proxies differ by this much). Sequential requests and a closed loop at concurrency
   8, in blocks of requests in a shuffled order, so machine load hits all alike.
2. The live monitor (policies/loop/monitor.py) on simulated agreement pairs, requirement
   "accuracy >= 95% of baseline", against the naive monitor: after every pair, re-run the
   fixed-n bootstrap of the kept accuracy and call `violated` when its one-sided 95% upper
   bound is below 0.95 (`ok` when the lower bound is at or above). On 0/1 pairs the bootstrap
   distribution of the mean is Binomial(n, p)/n, so its quantiles are exact here (infinitely
   many resamples). Two naive variants: over all pairs so far, and over the last 500.
   - pairs until `ok` when every pair agrees, and how often `ok` is ever said when the kept
     accuracy is really 0.93 (below the requirement);
   - false alarms: runs with no drift, watched after every pair, at the requirement exactly
     (0.95, the hardest case) and at 0.97; the share of runs that ever say `violated`;
   - detection delay: after a good history (kept accuracy 0.98), a drop of 5 points (to 0.93)
     and of 10 points (to 0.88), and the routed model turning always wrong after 20,000 pairs:
     pairs from the drop until `violated`.

    python benchmarks/bench_loop.py            # writes benchmarks/results/loop.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.stats import binom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_proxy import free_port, pct, read_response, wait_ready  # noqa: E402

from tradeoff.policies.loop.monitor import Monitor  # noqa: E402

R = 0.95
ARMS: list[tuple[str, list[str]]] = [
    ("shadow off", []),
    ("shadow 1.0", ["--shadow", "1.0"]),  # every request shadowed: the worst case
    ("shadow 0.1", ["--shadow", "0.1"]),
    ("shadow off again", []),  # the same as the first: the noise floor
]
HI = {"model": "bench", "messages": [{"role": "user", "content": "say something short"}]}


# -- 1. latency ---------------------------------------------------------------------------------
def start(work: Path, procs: list[subprocess.Popen[bytes]]) -> dict[str, str]:
    from tradeoff.evals.store import open_store
    from tradeoff.policies.artifact import PolicyArtifact, store_artifact
    from tradeoff.policies.families.base import create_policy

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    port = free_port()
    procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.upstream",
                "--port",
                str(port),
                "--delay-ms",
                "20",
            ],
            cwd=ROOT,
            **quiet,
        )
    )
    wait_ready(f"http://127.0.0.1:{port}/health", procs[-1])
    params = {
        "api_base": f"http://127.0.0.1:{port}/v1",
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
    }
    models = {
        "model_list": [
            {"model_name": m, "litellm_params": {"model": f"hosted_vllm/{m}", **params}}
            for m in ("cheap", "strong")
        ]
    }
    (work / "models.yaml").write_text(yaml.safe_dump(models))
    urls = {}
    for name, extra in ARMS:
        db = work / f"{name.replace(' ', '-')}.duckdb"
        artifact = PolicyArtifact.from_policy(
            "bench",
            create_policy("single", {"model": "cheap"}),
            requirement="accuracy >= 95% of baseline",
            baseline="strong",
        )
        store_artifact(open_store(db), artifact)
        ours = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tradeoff",
                    "serve",
                    "--port",
                    str(ours),
                    "--policy",
                    "bench",
                    "--config",
                    str(work / "models.yaml"),
                    "--db",
                    str(db),
                    *extra,
                ],
                cwd=ROOT,
                **quiet,
            )
        )
        wait_ready(f"http://127.0.0.1:{ours}/health", procs[-1])
        urls[name] = f"http://127.0.0.1:{ours}/v1"
    return urls


async def closed_loop(url: str, concurrency: int, requests: int) -> list[float]:
    """`requests` requests over `concurrency` keep-alive connections; ms per request."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    payload = json.dumps(HI).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
    ).encode()
    times: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while left > 0:
                left -= 1
                started = time.perf_counter()
                writer.write(head + payload)
                assert await read_response(reader) == 200
                times.append((time.perf_counter() - started) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


def latency(urls: dict[str, str], blocks: int, per_block: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for concurrency in (1, 8):
        samples: dict[str, list[float]] = {name: [] for name in urls}
        order = list(urls)
        rng = np.random.default_rng(concurrency)
        for block in range(blocks + 1):
            rng.shuffle(order)  # no arm always runs right after another's shadow calls
            for name in order:
                url = urls[name]
                times = asyncio.run(closed_loop(url, concurrency, per_block))
                if block:  # the first block warms connections and caches
                    samples[name] += times
                time.sleep(0.5)  # let the shadow calls of this block finish
        out[str(concurrency)] = {
            name: {"p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99), "n": len(v)}
            for name, v in samples.items()
        }
    return out


# -- 2. the monitor against the naive bootstrap --------------------------------------------------
def naive_bounds(x: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """After every pair: the bootstrap's one-sided 95% lower and upper bounds of the mean."""
    total = np.cumsum(x)
    n = np.arange(1, len(x) + 1)
    if window:
        before = np.concatenate([np.zeros(window), total])[: len(total)]
        total = total - before
        n = np.minimum(n, window)
    p = total / n
    return binom.ppf(0.05, n, p) / n, binom.ppf(0.95, n, p) / n


def naive_first(x: np.ndarray, window: int | None, start: int, what: str) -> int | None:
    """Index (1-based) of the first pair after `start` at which the naive monitor says `what`."""
    lower, upper = naive_bounds(x, window)
    hits = np.flatnonzero((upper < R) if what == "violated" else (lower >= R))
    hits = hits[hits >= start]
    return int(hits[0]) + 1 if len(hits) else None


def ours_first(x: np.ndarray, start: int, what: str, step: int = 50) -> int | None:
    monitor = Monitor(R)
    monitor.extend(x[:start], np.ones(start))
    if what == "violated" and monitor.state == "violated":
        return monitor.alarm_at
    for i in range(start, len(x), step):
        monitor.extend(x[i : i + step], np.ones(len(x[i : i + step])))
        if what == "violated" and monitor.state == "violated":
            return monitor.alarm_at
        if what == "ok" and monitor.ok_at is not None:
            return monitor.ok_at
    if what == "ok" and monitor.ok_at is not None:
        return monitor.ok_at
    return None


METHODS = {
    "monitor (anytime)": lambda x, s, w: ours_first(x, s, w),
    "naive bootstrap, all pairs": lambda x, s, w: naive_first(x, None, s, w),
    "naive bootstrap, last 500": lambda x, s, w: naive_first(x, 500, s, w),
}


def bernoulli(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    return (rng.random(n) < p).astype(float)


def simulate(runs: int, long_run: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"runs": runs, "long_run": long_run}
    ones = np.ones(300)
    out["pairs_until_ok_all_agree"] = {m: f(ones, 0, "ok") for m, f in METHODS.items()}
    data = [bernoulli(rng, 0.93, 2000) for _ in range(runs)]
    out["false_ok_rate_at_0.93"] = {
        m: float(np.mean([f(x, 0, "ok") is not None for x in data])) for m, f in METHODS.items()
    }
    for truth in (R, 0.97):
        data = [bernoulli(rng, truth, long_run) for _ in range(runs)]
        out[f"false_alarm_rate_at_{truth}"] = {
            m: float(np.mean([f(x, 0, "violated") is not None for x in data]))
            for m, f in METHODS.items()
        }
    history, cap = 5000, 20_000
    for drop, after in ((5, 0.93), (10, 0.88)):
        delays: dict[str, list[float]] = {m: [] for m in METHODS}
        for _ in range(runs // 2):
            x = np.concatenate([bernoulli(rng, 0.98, history), bernoulli(rng, after, cap)])
            for m, f in METHODS.items():
                first = f(x, history, "violated")
                delays[m].append(np.inf if first is None else first - history)
        out[f"delay_drop_{drop}_points"] = {m: _summary(d, cap) for m, d in delays.items()}
    delays = {m: [] for m in METHODS}
    for _ in range(10):
        x = np.concatenate([bernoulli(rng, 0.99, 20_000), np.zeros(2000)])
        for m, f in METHODS.items():
            first = f(x, 20_000, "violated")
            delays[m].append(np.inf if first is None else first - 20_000)
    out["delay_always_wrong_after_20000"] = {m: _summary(d, 2000) for m, d in delays.items()}
    return out


def _summary(delays: list[float], cap: int) -> dict[str, Any]:
    finite = [d for d in delays if np.isfinite(d)]
    return {
        "median": float(np.median(delays)) if len(finite) * 2 > len(delays) else None,
        "p90": float(np.quantile(delays, 0.9)) if np.isfinite(np.quantile(delays, 0.9)) else None,
        "detected_within_cap": len(finite) / len(delays),
        "cap": cap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per-block", type=int, default=80)
    parser.add_argument("--runs", type=int, default=100, help="simulated runs per scenario")
    parser.add_argument("--long-run", type=int, default=10_000, help="pairs per no-drift run")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/loop.json"))
    args = parser.parse_args()
    # A SIGTERM unwinds like an exception, so the servers below are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_loop.py " + " ".join(sys.argv[1:])
    }
    if not args.skip_latency:
        with tempfile.TemporaryDirectory() as tmp:
            procs: list[subprocess.Popen[bytes]] = []
            try:
                urls = start(Path(tmp), procs)
                result["latency"] = latency(urls, args.blocks, args.per_block)
            finally:
                for proc in reversed(procs):
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        for concurrency, rows in result["latency"].items():
            off = rows["shadow off"]
            for name, _ in ARMS[1:]:
                on = rows[name]
                print(
                    f"concurrency {concurrency}, shadow off vs {name:16}: p50 "
                    f"{off['p50_ms']:.2f} / {on['p50_ms']:.2f} ms "
                    f"(x{on['p50_ms'] / off['p50_ms']:.2f}), p99 {off['p99_ms']:.2f} / "
                    f"{on['p99_ms']:.2f} ms (x{on['p99_ms'] / off['p99_ms']:.2f})"
                )
    started = time.perf_counter()
    result["monitor"] = simulate(args.runs, args.long_run, seed=0)
    result["monitor_seconds"] = round(time.perf_counter() - started, 1)
    for scenario, rows in result["monitor"].items():
        if isinstance(rows, dict):
            print(scenario)
            for method, value in rows.items():
                print(f"  {method:28} {value}")
    result |= {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
