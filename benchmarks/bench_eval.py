"""Eval runner throughput: outcomes recorded per second beside raw litellm and the direct path.

Every phase makes the same call (a streamed chat completion with usage) against the upstream
stand-in running in its own process (`python -m tests.support.upstream`):

- "litellm": a bare asyncio loop over `litellm.acompletion` with a semaphore (what the runner
  used before it shared the proxy's adapter);
- "direct": a bare loop over the shared adapter's direct OpenAI-compatible path
  (`evals.upstream.Adapter.open_stream`, as the proxy calls it): the ceiling;
- "runner": the full `tradeoff eval` path (`Runner.run`): limits, retries, grading, batched
  DuckDB writes, run bookkeeping and the final summary, through that same adapter.

Each phase runs in a fresh process after a short warm-up, so peak RSS is that phase's own.

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
PHASES = ("litellm", "direct", "runner")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _raw(url: str, calls: int, concurrency: int, reps: int) -> list[tuple[float, float]]:
    from tradeoff.evals.llm import litellm

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


def _direct(url: str, calls: int, concurrency: int, reps: int) -> list[tuple[float, float]]:
    from tests.evals.runner_fixtures import model_entry
    from tradeoff.evals.registry import parse_entry
    from tradeoff.evals.targets import build_target
    from tradeoff.evals.upstream import Adapter

    os.environ["TRADEOFF_TEST_KEY"] = "x"
    target = build_target(parse_entry(model_entry("bench", url), "bench"))
    body = {"messages": MESSAGES, "stream": True}

    async def batch(n: int) -> None:
        adapter = Adapter()  # one pool per run, as the runner and the proxy hold it
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                stream = await adapter.open_stream(target, body, 30.0, keep_usage=True)
                try:
                    async for _ in stream.events():
                        pass
                finally:
                    await stream.aclose()

        try:
            await asyncio.gather(*(one() for _ in range(n)))
        finally:
            await adapter.aclose()

    asyncio.run(batch(min(8, calls)))  # warm-up
    timings = []
    for _ in range(reps):
        start, cpu = time.perf_counter(), time.process_time()
        asyncio.run(batch(calls))
        timings.append(
            (calls / (time.perf_counter() - start), (time.process_time() - cpu) / calls * 1000)
        )
    return timings


def _runner(url: str, calls: int, concurrency: int, reps: int) -> list[tuple[float, float]]:
    from tests.evals.runner_fixtures import add_items, model_entry, qa_items
    from tradeoff.evals.registry import ModelEntry, Registry, parse_entry
    from tradeoff.evals.runner import EvalSpec, Runner, run_eval
    from tradeoff.evals.store import Store

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
    timings = {"litellm": _raw, "direct": _direct, "runner": _runner}[kind](
        url, calls, concurrency, reps
    )
    rate = statistics.median(t[0] for t in timings)
    cpu_ms = statistics.median(t[1] for t in timings)
    print(json.dumps({"rate": rate, "cpu_ms": cpu_ms, "peak_rss_mb": _peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (median kept)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
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
            for kind in PHASES:
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
            row: dict[str, float] = {"concurrency": concurrency, "calls": calls}
            for kind in PHASES:
                row[f"{kind}_per_s"] = result[kind]["rate"]
                row[f"{kind}_cpu_ms"] = result[kind]["cpu_ms"]
                row[f"{kind}_peak_rss_mb"] = result[kind]["peak_rss_mb"]
            row["runner_vs_litellm"] = row["runner_per_s"] / row["litellm_per_s"]
            row["runner_vs_direct"] = row["runner_per_s"] / row["direct_per_s"]
            rows.append(row)
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    print(table(rows))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2))


def table(rows: list[dict[str, float]]) -> str:
    head = (
        "conc calls litellm/s direct/s runner/s run/lit run/dir "
        "cpu-ms lit/dir/run     MB lit/dir/run"
    )
    lines = [head]
    for r in rows:
        cpu = "/".join(f"{r[f'{k}_cpu_ms']:.2f}" for k in PHASES)
        rss = "/".join(f"{r[f'{k}_peak_rss_mb']:.0f}" for k in PHASES)
        lines.append(
            f"{r['concurrency']:>4} {r['calls']:>5} {r['litellm_per_s']:>9.1f} "
            f"{r['direct_per_s']:>8.1f} {r['runner_per_s']:>8.1f} "
            f"{r['runner_vs_litellm']:>6.2f}x {r['runner_vs_direct']:>6.2f}x "
            f"{cpu:>18} {rss:>14}"
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
