"""Eval runner throughput: outcomes recorded per second vs the raw litellm call rate.

Both sides make the same call (a streamed chat completion with usage) against the upstream
stand-in running in its own process (`python -m tests.support.upstream`). "raw" is a bare
asyncio loop over `litellm.acompletion` with a semaphore: the ceiling. "runner" is the full
`tradeoff eval` path: limits, retries, grading, batched DuckDB writes, run bookkeeping. Each
phase runs in a fresh process after a short warm-up, so peak RSS is that phase's own.

    python benchmarks/bench_eval.py            # prints a table, writes benchmarks/results/eval.json
    python benchmarks/bench_eval.py --calls 300 --concurrency 1 16 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MESSAGES = [{"role": "user", "content": "question 1"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _raw(url: str, calls: int, concurrency: int, reps: int) -> list[tuple[float, float]]:
    from evals.llm import litellm

    lt = litellm()

    async def batch(n: int) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                for _attempt in range(3):  # a stale keep-alive can fail; the runner retries too
                    try:
                        stream = await lt.acompletion(
                            model="openai/bench",
                            api_base=url,
                            api_key="x",
                            messages=MESSAGES,
                            stream=True,
                            stream_options={"include_usage": True},
                            max_retries=0,
                        )
                        async for _ in stream:
                            pass
                        return
                    except Exception:
                        continue

        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(batch(min(8, calls)))  # warm-up
    timings = []
    for _ in range(reps):
        # A fresh event loop per repetition, as each runner repetition (one CLI run) has.
        start, cpu = time.perf_counter(), time.process_time()
        asyncio.run(batch(calls))
        timings.append(
            (calls / (time.perf_counter() - start), (time.process_time() - cpu) / calls * 1000)
        )
    return timings


def _runner(url: str, calls: int, concurrency: int, reps: int) -> list[tuple[float, float]]:
    from evals.registry import ModelEntry, Registry, parse_entry
    from evals.runner import EvalSpec, Runner, run_eval
    from evals.store import Store
    from tests.evals.runner_fixtures import add_items, model_entry, qa_items

    os.environ["TRADEOFF_TEST_KEY"] = "x"
    entry: ModelEntry = parse_entry(model_entry("bench", url), "bench")
    registry = Registry([entry])
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        store.migrate()
        add_items(store, "warm", qa_items(8))
        common = {"models": ["bench"], "concurrency": concurrency, "progress": False}
        run_eval(store, registry, EvalSpec(dataset="warm", **common))  # type: ignore[arg-type]
        timings = []
        for rep in range(reps):
            add_items(store, f"bench{rep}", qa_items(calls))
            spec = EvalSpec(dataset=f"bench{rep}", **common)  # type: ignore[arg-type]
            runner = Runner(store, registry, spec)
            start, cpu = time.perf_counter(), time.process_time()
            report = asyncio.run(runner.run())  # includes the final flush and the summary
            elapsed = time.perf_counter() - start
            assert report.recorded == calls, report
            timings.append((calls / elapsed, (time.process_time() - cpu) / calls * 1000))
    return timings


def phase(kind: str, url: str, calls: int, concurrency: int, reps: int) -> None:
    if kind == "raw":
        timings = _raw(url, calls, concurrency, reps)
    else:
        timings = _runner(url, calls, concurrency, reps)
    rate = statistics.median(t[0] for t in timings)
    cpu_ms = statistics.median(t[1] for t in timings)
    print(json.dumps({"rate": rate, "cpu_ms": cpu_ms, "peak_rss_mb": _peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (median kept)")
    parser.add_argument("--phase", choices=["raw", "runner"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval.json"))
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.url, args.calls, args.concurrency[0], args.reps)
        return
    port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.support.upstream", "--port", str(port)], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}/v1"
    rows = []
    try:
        _wait_for(port)
        for concurrency in args.concurrency:
            calls = args.calls if concurrency > 1 else max(50, args.calls // 4)
            result = {}
            for kind in ("raw", "runner"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--phase",
                        kind,
                        "--url",
                        url,
                        "--calls",
                        str(calls),
                        "--concurrency",
                        str(concurrency),
                    ],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result[kind] = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                {
                    "concurrency": concurrency,
                    "calls": calls,
                    "raw_calls_per_s": result["raw"]["rate"],
                    "runner_outcomes_per_s": result["runner"]["rate"],
                    "runner_vs_raw": result["runner"]["rate"] / result["raw"]["rate"],
                    "raw_cpu_ms_per_call": result["raw"]["cpu_ms"],
                    "runner_cpu_ms_per_outcome": result["runner"]["cpu_ms"],
                    "raw_peak_rss_mb": result["raw"]["peak_rss_mb"],
                    "runner_peak_rss_mb": result["runner"]["peak_rss_mb"],
                }
            )
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    print(table(rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2))


def table(rows: list[dict[str, float]]) -> str:
    head = "conc calls   raw/s runner/s ratio raw-cpu-ms run-cpu-ms raw-MB run-MB"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['concurrency']:>4} {r['calls']:>5} {r['raw_calls_per_s']:>7.1f} "
            f"{r['runner_outcomes_per_s']:>8.1f} {r['runner_vs_raw']:>5.2f} "
            f"{r['raw_cpu_ms_per_call']:>10.2f} {r['runner_cpu_ms_per_outcome']:>10.2f} "
            f"{r['raw_peak_rss_mb']:>6.0f} {r['runner_peak_rss_mb']:>6.0f}"
        )
    return "\n".join(lines)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("upstream stand-in did not start")


if __name__ == "__main__":
    main()
