"""The proxy's cost: added latency over a direct call, and requests/s, beside LiteLLM's proxy.

Every target sits in front of the same upstream stand-in, running in its own process
(`python -m tests.support.upstream`, no artificial delay), all in the same run:

    direct            the client calls the upstream itself (the floor)
    tradeoff          `tradeoff serve` (one uvicorn worker), direct aiohttp path to the upstream;
                      every request's log row is spooled to disk before its answer completes
    tradeoff-nospool  the same, `--no-spool`: rows wait in memory until the batched write (the
                      request log before the spool; a kill -9 lost the last batch)
    tradeoff+litellm  `tradeoff serve` with the model forced through `litellm.acompletion`
    litellm-proxy     LiteLLM's own proxy, `litellm --config ... --num_workers 1`

Latency: sequential requests, the targets interleaved round by round so machine load hits all
alike; "added" = target p50/p99 minus direct p50/p99. TTFT: time to the first SSE data line.
Throughput: closed loop at concurrency 1/16/64 for a few seconds each, targets taking turns,
the median of a few rounds; with it, each server's CPU time per request (from /proc), which a
busy machine disturbs far less than requests/s.

LiteLLM's proxy needs its `proxy` extra, kept out of the project's environment:

    python3 -m venv /work/venv-litellm-proxy
    /work/venv-litellm-proxy/bin/pip install 'litellm[proxy]==1.106.2'
    python benchmarks/bench_proxy.py --litellm /work/venv-litellm-proxy/bin/litellm

(or set TRADEOFF_LITELLM_PROXY). Without it the litellm-proxy column is skipped.
Writes benchmarks/results/proxy.json.

`--routes` measures every client protocol instead (benchmarks/results/proxy_routes.json): per
route, sequential requests through `tradeoff serve` against the same request sent straight to
the stand-in's own endpoint for it (which speaks Responses, Messages, embeddings and completions
too), cases interleaved; translated (a chat upstream) and native (`api: responses` /
`api: anthropic`) for the two agent protocols; p50/p99 and, for streams, time to the first
event. Then the CPU cost of translating one request in-process, ours against litellm's
translators (`LiteLLMCompletionResponsesConfig`, `LiteLLMAnthropicMessagesAdapter`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
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
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
KEY = "sk-bench-master-key-0123456789"  # both proxies authenticate clients
BODY = {"model": "bench", "messages": [{"role": "user", "content": "say something short"}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout_s:.0f}s")


def start_upstream(procs: list[subprocess.Popen[bytes]]) -> tuple[str, dict[str, Any]]:
    """The stand-in upstream in its own process (appended to `procs`): its URL and the
    litellm_params pricing every benchmark model behind it."""
    port = free_port()
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "tests.support.upstream", "--port", str(port)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"http://127.0.0.1:{port}/health", procs[-1])
    return url, {"api_base": url, "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


def start_servers(
    work: Path, litellm_bin: str | None, procs: list[subprocess.Popen[bytes]]
) -> tuple[dict[str, str], dict[str, int]]:
    """Start the upstream and the proxies, appending each process to `procs` (the caller stops
    them, also when a later one fails to start)."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    upstream, params = start_upstream(procs)
    models = {"model_list": [
        {"model_name": "bench", "litellm_params": {"model": "hosted_vllm/bench", **params}},
        {"model_name": "bench-responses", "api": "responses",
         "litellm_params": {"model": "hosted_vllm/bench", **params}},
        {"model_name": "bench-anthropic", "api": "anthropic",
         "litellm_params": {"model": "hosted_vllm/bench", **params}},
        {"model_name": "bench-litellm", "adapter": "litellm",
         "litellm_params": {"model": "openai/bench", "api_key": "os.environ/BENCH_KEY", **params}},
    ]}  # fmt: skip
    (work / "models.yaml").write_text(yaml.safe_dump(models))
    ports = {}
    # Each its own process, so the litellm path's imports and threads burden only its own.
    servers = (("tradeoff", []), ("tradeoff-nospool", ["--no-spool"]), ("tradeoff+litellm", []))
    for name, extra in servers:
        ports[name] = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tradeoff", "serve", "--port", str(ports[name]),
             "--config", str(work / "models.yaml"), "--db", str(work / f"{name}.duckdb"),
             "--api-key", KEY, *extra],
            cwd=ROOT, env={**os.environ, "BENCH_KEY": "x"}, **quiet,
        ))  # fmt: skip
        wait_ready(f"http://127.0.0.1:{ports[name]}/health", procs[-1])
    started = zip(servers, procs[1:], strict=True)  # the upstream, then one per server
    pids = {"direct": procs[0].pid} | {name: p.pid for (name, _), p in started}
    urls = {
        "direct": upstream,
        "tradeoff": f"http://127.0.0.1:{ports['tradeoff']}/v1",
        "tradeoff-nospool": f"http://127.0.0.1:{ports['tradeoff-nospool']}/v1",
        "tradeoff+litellm": f"http://127.0.0.1:{ports['tradeoff+litellm']}/v1",
    }
    if litellm_bin:
        lite = free_port()
        config = {"model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/bench", "api_base": upstream, "api_key": "x"}}]}  # fmt: skip
        (work / "litellm.yaml").write_text(yaml.safe_dump(config))
        procs.append(subprocess.Popen(
            [litellm_bin, "--config", str(work / "litellm.yaml"), "--port", str(lite),
             "--host", "127.0.0.1", "--num_workers", "1"],
            cwd=work, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                           "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": KEY}, **quiet,
        ))  # fmt: skip
        wait_ready(f"http://127.0.0.1:{lite}/health/liveliness", procs[-1])
        urls["litellm-proxy"] = f"http://127.0.0.1:{lite}/v1"
        pids["litellm-proxy"] = procs[-1].pid
    return urls, pids


def body_for(target: str, stream: bool = False) -> dict[str, Any]:
    body = dict(BODY, model="bench-litellm" if target == "tradeoff+litellm" else "bench")
    if stream:
        body["stream"] = True
    return body


def headers_for(target: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEY}"}


def latency(urls: dict[str, str], n: int, stream: bool) -> dict[str, list[float]]:
    """Sequential requests, targets interleaved; ms to the full answer or to the first event."""
    samples: dict[str, list[float]] = {t: [] for t in urls}
    with httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY), timeout=30) as http:
        for i in range(n + 20):
            for target, url in urls.items():
                started = time.perf_counter()
                if stream:
                    with http.stream("POST", f"{url}/chat/completions", json=body_for(target, True),
                                     headers=headers_for(target)) as response:  # fmt: skip
                        elapsed = 0.0
                        for line in response.iter_lines():
                            if not elapsed and line.startswith("data:"):
                                elapsed = time.perf_counter() - started
                else:
                    response = http.post(f"{url}/chat/completions", json=body_for(target),
                                         headers=headers_for(target))  # fmt: skip
                    elapsed = time.perf_counter() - started
                assert response.status_code == 200, (target, response.status_code)
                if i >= 20:  # warm-up: connections, imports, caches
                    samples[target].append(elapsed * 1000)
    return samples


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (content-length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "content-length" in fields:
        await reader.readexactly(int(fields["content-length"]))
    elif fields.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def throughput(url: str, target: str, concurrency: int, seconds: float) -> tuple[float, int]:
    """Closed loop of `concurrency` keep-alive connections. The client is a bare asyncio
    HTTP/1.1 writer/reader: httpx's own pool would be the bottleneck at 64 connections."""
    parsed = httpx.URL(url)
    payload = json.dumps(body_for(target)).encode()
    request = (
        f"POST {parsed.path}/chat/completions HTTP/1.1\r\nhost: {parsed.host}:{parsed.port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        f"authorization: Bearer {KEY}\r\n\r\n"
    ).encode() + payload
    done = 0

    async def worker(stop_at: float) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            while time.perf_counter() < stop_at:
                writer.write(request)
                status = await read_response(reader)
                assert status == 200, (target, status)
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(time.perf_counter() + 0.5) for _ in range(concurrency)))
    done = 0
    started = time.perf_counter()
    await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
    return done / (time.perf_counter() - started), done


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughputs(
    urls: dict[str, str], pids: dict[str, int], args: argparse.Namespace
) -> tuple[dict[str, dict[int, float]], dict[str, dict[int, float]]]:
    """Requests/s per target and concurrency (the median of `rounds` runs, the targets taking
    turns within each round so that load from the rest of the machine hits them alike), and
    the server's CPU microseconds per request (all rounds, warm-up included): a cost that other
    processes on a busy machine disturb far less than wall-clock throughput."""
    runs: dict[str, dict[int, list[float]]] = {t: {c: [] for c in args.concurrency} for t in urls}
    cpu = {t: dict.fromkeys(args.concurrency, 0.0) for t in urls}
    served = {t: dict.fromkeys(args.concurrency, 0) for t in urls}
    for c in args.concurrency:
        for _ in range(args.rounds):
            for target, url in urls.items():
                before = cpu_seconds(pids[target])
                rps, done = asyncio.run(throughput(url, target, c, args.seconds))
                cpu[target][c] += cpu_seconds(pids[target]) - before
                served[target][c] += done
                runs[target][c].append(rps)
    median = {t: {c: statistics.median(v) for c, v in by_c.items()} for t, by_c in runs.items()}
    per_request = {
        t: {c: cpu[t][c] / max(1, served[t][c]) * 1e6 for c in args.concurrency} for t in urls
    }
    return median, per_request


def record_cost(rows: int = 20_000, rounds: int = 5) -> dict[str, float]:
    """CPU per `RequestLog.record()` call, in the process (what the event loop pays per request):
    the spool (JSON line + one write) against the in-memory queue; median of `rounds`."""
    from datetime import datetime

    from tradeoff.evals.store import open_store
    from tradeoff.router.log.request_log import RequestLog, RequestRow

    batch = [
        RequestRow(f"req-{i:032x}", datetime(2026, 1, 1), "policy", "policy", "model", "task",
                   False, 1, 0, 200, None, 12, 34, 1e-5, 2e-5, 3.5, None, None)
        for i in range(rows)
    ]  # fmt: skip
    runs: dict[str, list[float]] = {"memory": [], "spool": []}
    for _ in range(rounds):
        for name in runs:
            with tempfile.TemporaryDirectory() as tmp:
                store = open_store(Path(tmp) / "db.duckdb")
                log = RequestLog(store, Path(tmp) / "spool", spool=name == "spool")  # not started
                started = time.perf_counter()
                for row in batch:
                    log.record(row)
                runs[name].append((time.perf_counter() - started) / rows * 1e6)
    return {f"{name}_us_per_row": statistics.median(v) for name, v in runs.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--litellm", default=os.environ.get("TRADEOFF_LITELLM_PROXY"),
                        help="path to LiteLLM proxy's `litellm` (see the module docstring)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per target")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput point")
    parser.add_argument("--rounds", type=int, default=3,
                        help="throughput rounds, targets interleaved; the median is reported")  # fmt: skip
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--targets", nargs="+", help="measure only these (and direct)")
    parser.add_argument(
        "--out",
        default=None,
        help="[default: benchmarks/results/proxy.json, or proxy_routes.json with --routes]",
    )
    parser.add_argument(
        "--routes",
        action="store_true",
        help="measure every client protocol's added latency (see the docstring)",
    )
    args = parser.parse_args()
    name = "proxy_routes.json" if args.routes else "proxy.json"
    args.out = args.out or str(ROOT / "benchmarks/results" / name)
    if args.routes:
        from bench_routes import run_routes  # beside this script

        run_routes(args, start_servers)
        return
    litellm_bin = args.litellm or shutil.which("litellm-proxy-bench")
    if litellm_bin and not Path(litellm_bin).exists():
        sys.exit(f"--litellm {litellm_bin} does not exist; create it as the docstring says")
    if not litellm_bin:
        print("LiteLLM proxy not given (--litellm or TRADEOFF_LITELLM_PROXY): skipping it")
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            urls, pids = start_servers(Path(tmp), litellm_bin, procs)
            if args.targets:
                urls = {t: u for t, u in urls.items() if t in {"direct", *args.targets}}
            lat = latency(urls, args.requests, stream=False)
            ttft = latency(urls, args.requests // 2, stream=True)
            rps, cpu = throughputs(urls, pids, args)
            record = record_cost()
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report(urls, lat, ttft, rps, cpu, record, args)


def report(urls: dict[str, str], lat: dict[str, list[float]], ttft: dict[str, list[float]],
           rps: dict[str, dict[int, float]], cpu: dict[str, dict[int, float]],
           record: dict[str, float],
           args: argparse.Namespace) -> None:  # fmt: skip
    base = {
        "p50": pct(lat["direct"], 0.5), "p99": pct(lat["direct"], 0.99),
        "ttft50": pct(ttft["direct"], 0.5),
    }  # fmt: skip
    rows = []
    for target in urls:
        row: dict[str, Any] = {
            "target": target,
            "p50_ms": pct(lat[target], 0.5),
            "p99_ms": pct(lat[target], 0.99),
            "added_p50_ms": pct(lat[target], 0.5) - base["p50"],
            "added_p99_ms": pct(lat[target], 0.99) - base["p99"],
            "ttft_p50_ms": pct(ttft[target], 0.5),
            "added_ttft_p50_ms": pct(ttft[target], 0.5) - base["ttft50"],
            "rps": {str(c): v for c, v in rps[target].items()},
            "cpu_us_per_request": {str(c): v for c, v in cpu[target].items()},
        }
        rows.append(row)
    header = f"{'target':17} {'p50 ms':>7} {'+p50':>6} {'p99 ms':>7} {'+p99':>6} {'ttft':>6} {'+ttft':>6}"
    header += "".join(f" {'rps@' + str(c):>8}" for c in args.concurrency)
    header += "".join(f" {'cpu@' + str(c):>8}" for c in args.concurrency)
    print(header)
    for r in rows:
        line = (f"{r['target']:17} {r['p50_ms']:7.2f} {r['added_p50_ms']:6.2f} {r['p99_ms']:7.2f} "
                f"{r['added_p99_ms']:6.2f} {r['ttft_p50_ms']:6.2f} {r['added_ttft_p50_ms']:6.2f}")  # fmt: skip
        line += "".join(f" {v:8.0f}" for v in r["rps"].values())
        line += "".join(f" {v:8.0f}" for v in r["cpu_us_per_request"].values())
        print(line)
    spool: dict[str, Any] = {}
    if {"tradeoff", "tradeoff-nospool"} <= set(urls):
        spool = {
            "added_p50_ms": pct(lat["tradeoff"], 0.5) - pct(lat["tradeoff-nospool"], 0.5),
            "added_p99_ms": pct(lat["tradeoff"], 0.99) - pct(lat["tradeoff-nospool"], 0.99),
            "added_ttft_p50_ms": pct(ttft["tradeoff"], 0.5) - pct(ttft["tradeoff-nospool"], 0.5),
            "throughput_ratio": {
                str(c): rps["tradeoff"][c] / rps["tradeoff-nospool"][c] for c in args.concurrency
            },
            "added_cpu_us_per_request": {
                str(c): cpu["tradeoff"][c] - cpu["tradeoff-nospool"][c] for c in args.concurrency
            },
        }
        print(f"spool vs in-memory log: {spool['added_p50_ms']:+.2f} ms p50, "
              f"{spool['added_p99_ms']:+.2f} ms p99, {spool['added_ttft_p50_ms']:+.2f} ms ttft; "
              "throughput " + ", ".join(f"x{v:.2f} @{c}" for c, v in spool["throughput_ratio"].items())
              + "; server CPU per request " + ", ".join(
                  f"{v:+.0f} us @{c}" for c, v in spool["added_cpu_us_per_request"].items()))  # fmt: skip
    spool["record"] = record
    print(f"record() per row: {record['memory_us_per_row']:.1f} us in memory, "
          f"{record['spool_us_per_row']:.1f} us spooled")  # fmt: skip
    ratios = {}
    if {"tradeoff", "litellm-proxy"} <= set(rps):
        ratios = {str(c): rps["tradeoff"][c] / rps["litellm-proxy"][c] for c in args.concurrency}
        print("tradeoff / litellm-proxy throughput: "
              + ", ".join(f"x{v:.1f} @{c}" for c, v in ratios.items()))  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": "python benchmarks/bench_proxy.py " + " ".join(sys.argv[1:]),
        "requests": args.requests, "seconds": args.seconds, "rounds": args.rounds, "rows": rows,
        "throughput_ratio_vs_litellm_proxy": ratios, "spool_vs_in_memory_log": spool,
        "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
    }, indent=2))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
