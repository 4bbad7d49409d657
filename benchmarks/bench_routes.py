"""Every client protocol's cost through the proxy: `python benchmarks/bench_proxy.py --routes`.

Added latency of each route over the same request sent straight to the upstream stand-in's own
endpoint for it, and the in-process CPU cost of translating a request, ours against litellm's
translators. See bench_proxy.py's docstring; writes benchmarks/results/proxy_routes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
KEY = "sk-bench-master-key-0123456789"
ASK = [{"role": "user", "content": "say something short"}]
TOOLS = [{"type": "function", "name": "get_weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]  # fmt: skip

# (case, path, the proxy's model, body without model, streamed)
CASES: list[tuple[str, str, str, dict[str, Any], bool]] = [
    ("chat", "/chat/completions", "bench", {"messages": ASK}, False),
    ("responses (translated)", "/responses", "bench", {"input": "say something short"}, False),
    ("responses (native)", "/responses", "bench-responses", {"input": "say something short"},
     False),
    ("messages (translated)", "/messages", "bench", {"max_tokens": 50, "messages": ASK}, False),
    ("messages (native)", "/messages", "bench-anthropic", {"max_tokens": 50, "messages": ASK},
     False),
    ("embeddings", "/embeddings", "bench", {"input": "say something short"}, False),
    ("completions", "/completions", "bench", {"prompt": "say something short"}, False),
    ("chat stream", "/chat/completions", "bench", {"messages": ASK, "stream": True}, True),
    ("responses stream (translated)", "/responses", "bench",
     {"input": "say something short", "stream": True}, True),
    ("messages stream (translated)", "/messages", "bench",
     {"max_tokens": 50, "messages": ASK, "stream": True}, True),
]  # fmt: skip


def timed(http: httpx.Client, url: str, body: dict[str, Any], stream: bool) -> float:
    """ms to the whole answer, or to the first SSE data line of a stream."""
    headers = {"authorization": f"Bearer {KEY}"}
    started = time.perf_counter()
    if not stream:
        response = http.post(url, json=body, headers=headers)
        assert response.status_code == 200, (url, response.text[:300])
        return (time.perf_counter() - started) * 1000
    elapsed = 0.0
    with http.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200, url
        for line in response.iter_lines():
            if not elapsed and line.startswith("data:"):
                elapsed = (time.perf_counter() - started) * 1000
    return elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(urls: dict[str, str], n: int) -> dict[str, dict[str, list[float]]]:
    """Per case, `direct` and `tradeoff` samples: sequential, every case and target in turn."""
    samples: dict[str, dict[str, list[float]]] = {
        c[0]: {"direct": [], "tradeoff": []} for c in CASES
    }
    with httpx.Client(transport=httpx.HTTPTransport(socket_options=NODELAY), timeout=30) as http:
        for i in range(n + 20):
            for case, path, model, body, stream in CASES:
                for target in ("direct", "tradeoff"):
                    ms = timed(http, urls[target] + path, {"model": model, **body}, stream)
                    if i >= 20:  # warm-up: connections, imports, caches
                        samples[case][target].append(ms)
    return samples


def translation_cost(rounds: int = 2000) -> dict[str, dict[str, float]]:
    """µs of CPU to translate one Responses / Messages request (a tool round trip) to chat
    completions, ours against litellm's translators; median of 5 runs of `rounds`."""
    from tradeoff.evals.llm import litellm
    from tradeoff.router.protocols.anthropic import translate as ours_anthropic
    from tradeoff.router.protocols.responses import translate as ours_responses

    litellm()
    from litellm.llms.anthropic.pass_through.adapters.transformation import (
        LiteLLMAnthropicMessagesAdapter,
    )
    from litellm.responses.litellm_completion_transformation.transformation import (
        LiteLLMCompletionResponsesConfig,
    )

    responses = {"model": "bench", "instructions": "be brief", "tools": TOOLS,
                 "max_output_tokens": 100, "input": [
                     {"role": "user", "content": "weather in Paris?"},
                     {"type": "function_call", "call_id": "c1", "name": "get_weather",
                      "arguments": "{\"city\": \"Paris\"}"},
                     {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]}  # fmt: skip
    messages = {"model": "bench", "max_tokens": 100, "system": "be brief",
                "tools": [{"name": "get_weather", "input_schema": TOOLS[0]["parameters"]}],
                "messages": [
                    {"role": "user", "content": "weather in Paris?"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1",
                     "name": "get_weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                                  "content": "sunny"}]}]}  # fmt: skip
    params = {k: v for k, v in responses.items() if k not in ("model", "input")}
    adapter = LiteLLMAnthropicMessagesAdapter()
    cases: dict[str, dict[str, Callable[[], Any]]] = {
        "responses": {
            "tradeoff": lambda: ours_responses(responses),
            "litellm": lambda: LiteLLMCompletionResponsesConfig.
            transform_responses_api_request_to_chat_completion_request(
                model="bench", input=responses["input"], responses_api_request=params,
                custom_llm_provider="openai"),
        },
        "messages": {
            "tradeoff": lambda: ours_anthropic(messages),
            "litellm": lambda: adapter.translate_anthropic_to_openai(messages),  # type: ignore[arg-type]
        },
    }  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for name, impls in cases.items():
        runs: dict[str, list[float]] = {impl: [] for impl in impls}
        for _ in range(5):
            for impl, fn in impls.items():
                started = time.process_time()
                for _ in range(rounds):
                    fn()
                runs[impl].append((time.process_time() - started) / rounds * 1e6)
        out[name] = {f"{impl}_us": statistics.median(v) for impl, v in runs.items()}
    return out


def run_routes(args: argparse.Namespace, start_servers: Callable[..., Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            urls, _ = start_servers(Path(tmp), None, procs)
            samples = latency({"direct": urls["direct"], "tradeoff": urls["tradeoff"]},
                              args.requests)  # fmt: skip
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    translation = translation_cost()
    rows = []
    print(f"{'route':31} {'direct p50':>10} {'p50':>7} {'+p50':>6} {'+p99':>7}")
    for case, by in samples.items():
        row = {
            "route": case,
            "direct_p50_ms": pct(by["direct"], 0.5),
            "tradeoff_p50_ms": pct(by["tradeoff"], 0.5),
            "added_p50_ms": pct(by["tradeoff"], 0.5) - pct(by["direct"], 0.5),
            "added_p99_ms": pct(by["tradeoff"], 0.99) - pct(by["direct"], 0.99),
        }
        rows.append(row)
        print(f"{case:31} {row['direct_p50_ms']:10.2f} {row['tradeoff_p50_ms']:7.2f} "
              f"{row['added_p50_ms']:6.2f} {row['added_p99_ms']:7.2f}")  # fmt: skip
    for name, cost in translation.items():
        print(f"translate one {name} request: {cost['tradeoff_us']:.1f} us (tradeoff), "
              f"{cost['litellm_us']:.1f} us (litellm), "
              f"x{cost['litellm_us'] / cost['tradeoff_us']:.1f}")  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "command": "python benchmarks/bench_proxy.py " + " ".join(sys.argv[1:]),
        "requests": args.requests, "rows": rows, "translation_cpu": translation,
        "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
    }, indent=2))  # fmt: skip
    print(f"wrote {args.out}")
