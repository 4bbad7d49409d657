"""What tracing costs the proxy: added latency with OpenTelemetry export on, beside it off.

Three targets in front of the same upstream stand-in, in the same run, requests interleaved
round by round so machine load hits all alike:

    direct      the client calls the upstream itself (the floor)
    tradeoff    `tradeoff serve`, tracing off (no OTEL_* variable)
    +otel       `tradeoff serve` exporting every span over OTLP/HTTP to a receiver on 127.0.0.1
                (tests/support/otlp.py, in this process's threads)

Reported: p50/p99 added latency over direct, for plain and streamed chat requests, and the
spans the receiver got. Writes benchmarks/results/telemetry.json.

    python benchmarks/bench_telemetry.py [--n 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_proxy import KEY, ROOT, free_port, latency, pct, start_upstream, wait_ready
from tests.support.otlp import Receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="requests per target and kind")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "telemetry.json"))
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp, Receiver() as receiver:
        work = Path(tmp)
        try:
            upstream, params = start_upstream(procs)
            models = {"model_list": [
                {"model_name": "bench", "litellm_params": {"model": "hosted_vllm/bench", **params}}
            ]}  # fmt: skip
            (work / "models.yaml").write_text(yaml.safe_dump(models))
            urls = {"direct": upstream}
            for name, env in (
                ("tradeoff", {}),
                ("+otel", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}),
            ):
                port = free_port()
                clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "tradeoff", "serve", "--port", str(port),
                     "--config", str(work / "models.yaml"), "--db", str(work / f"{name}.duckdb"),
                     "--api-key", KEY],
                    cwd=ROOT, env={**clean, **env},
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))  # fmt: skip
                wait_ready(f"http://127.0.0.1:{port}/health", procs[-1])
                urls[name] = f"http://127.0.0.1:{port}/v1"
            results = {}
            for kind, stream in (("plain", False), ("stream", True)):
                samples = latency(urls, args.n, stream)
                floor50, floor99 = pct(samples["direct"], 0.5), pct(samples["direct"], 0.99)
                results[kind] = {
                    target: {
                        "p50_ms": round(pct(values, 0.5), 3),
                        "p99_ms": round(pct(values, 0.99), 3),
                        "added_p50_ms": round(pct(values, 0.5) - floor50, 3),
                        "added_p99_ms": round(pct(values, 0.99) - floor99, 3),
                    }
                    for target, values in samples.items()
                }
        finally:
            for process in procs:
                process.terminate()
            for process in procs:
                process.wait(timeout=60)
        results["spans_received"] = len(receiver.spans)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'kind':<8}{'target':<10}{'p50 ms':>9}{'added p50':>11}{'added p99':>11}")
    for kind in ("plain", "stream"):
        for target, row in results[kind].items():
            print(f"{kind:<8}{target:<10}{row['p50_ms']:>9.2f}{row['added_p50_ms']:>11.2f}"
                  f"{row['added_p99_ms']:>11.2f}")  # fmt: skip
    print(f"spans received: {results['spans_received']}")


if __name__ == "__main__":
    main()
