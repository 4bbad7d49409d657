"""Refine variants (issue 26): what the generate-verify-refine loop costs beyond its upstream
calls, in the proxy and in the eval runner, each beside the plain model in the same run.

The upstream stand-in (`tests.support.upstream`, in process) answers broken JSON first and valid
JSON once shown the failure, after `--delay-ms` per call, so `sloppy:fix` makes two calls where
`sloppy` makes one.

- proxy: mean latency of `sloppy` and `sloppy:fix` through the proxy (official openai client,
  non-streaming, sequential), and of a direct call to the stand-in; the proxy's own time per
  repair round = (fix - plain) - the stand-in's delay (the repair round's upstream time).
- eval: `tradeoff eval`'s runner on the same JSON items, plain then refine candidate: outcomes
  and upstream calls per second (the refine candidate's outcomes each with their rounds recorded
  in `outcome_rounds`, written in the outcome's transaction).

    python benchmarks/bench_refine.py          # prints a table, writes benchmarks/results/refine.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(fn: object, n: int) -> float:
    """Mean seconds of n calls of fn (after 3 warm-up calls)."""
    assert callable(fn)
    for _ in range(3):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ["TRADEOFF_TEST_KEY"] = "sk-bench"

    from openai import OpenAI

    from tests.evals.runner_fixtures import sloppy_models, sloppy_rules
    from tests.router.support import Proxy
    from tests.support.upstream import Upstream
    from tradeoff.evals.importers import import_file
    from tradeoff.evals.registry import load_registry
    from tradeoff.evals.runner import EvalSpec, run_eval
    from tradeoff.evals.store import Store
    from tradeoff.router.settings import Settings

    rules = sloppy_rules()
    for rule in rules:
        rule.delay_s = args.delay_ms / 1000
    ask = [{"role": "user", "content": "give me json"}]
    fmt = {"type": "json_object"}
    results: dict[str, dict[str, float]] = {}
    with Upstream(rules=rules) as up, tempfile.TemporaryDirectory() as tmp:
        config = sloppy_models(Path(tmp) / "models.yaml", up.url)
        direct = OpenAI(base_url=up.url, api_key="x", max_retries=0)
        settings = Settings(config_path=config, db_path=Path(tmp) / "proxy.duckdb", retries=0)
        with Proxy(settings) as proxy:
            client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)

            def ask_model(model: str) -> object:
                return lambda: client.chat.completions.create(
                    model=model, messages=ask, response_format=fmt
                )

            upstream_s = _timed(
                lambda: direct.chat.completions.create(model="sloppy", messages=ask),
                args.requests,
            )
            plain_s = _timed(ask_model("sloppy"), args.requests)
            fix_s = _timed(ask_model("sloppy:fix"), args.requests)
        results["proxy"] = {
            "upstream_call_ms": upstream_s * 1000,
            "plain_ms": plain_s * 1000,
            "fix_ms": fix_s * 1000,
            # The repair round's upstream time is the stand-in's scripted delay (its own work is
            # negligible): the rest of the difference is the proxy's (verify, rebuild, log).
            "own_ms_per_repair_round": (fix_s - plain_s) * 1000 - args.delay_ms,
        }
        store = Store(Path(tmp) / "eval.duckdb")
        store.migrate()
        items = Path(tmp) / "items.jsonl"
        items.write_text(
            "".join(
                json.dumps({"id": f"j{k}", "task": "json", "prompt": f"json {k}",
                            "grader": "json_valid", "metadata": {"response_format": fmt}}) + "\n"
                for k in range(args.items)
            )
        )  # fmt: skip
        import_file(store, items, "d", fmt="items")
        for model in ("sloppy", "sloppy:fix"):
            spec = EvalSpec(
                dataset="d", models=[model], progress=False, concurrency=args.concurrency
            )
            before = len(up.requests)
            start = time.perf_counter()
            report = run_eval(store, load_registry(config), spec)
            seconds = time.perf_counter() - start
            calls = len(up.requests) - before
            with store.connect(read_only=True) as con:
                counted = con.execute(
                    "SELECT count(*) FROM outcome_rounds WHERE model = ?", [model]
                ).fetchall()
            results[f"eval {model}"] = {
                "rounds_recorded": int(counted[0][0]),
                "outcomes": report.recorded,
                "upstream_calls": calls,
                "seconds": seconds,
                "outcomes_per_s": report.recorded / seconds,
                "calls_per_s": calls / seconds,
            }
    p = results["proxy"]
    print(f"stand-in delay {args.delay_ms:g} ms; proxy: {args.requests} sequential requests each")
    print(f"  direct call to the stand-in   {p['upstream_call_ms']:8.2f} ms")
    print(f"  sloppy through the proxy      {p['plain_ms']:8.2f} ms")
    print(f"  sloppy:fix (2 rounds)         {p['fix_ms']:8.2f} ms")
    print(f"  proxy's own time per repair   {p['own_ms_per_repair_round']:8.2f} ms")
    print(f"eval: {args.items} items, concurrency {args.concurrency}")
    print("  candidate     outcomes  rounds  calls  seconds  outcomes/s  calls/s")
    for model in ("sloppy", "sloppy:fix"):
        r = results[f"eval {model}"]
        print(f"  {model:<12} {r['outcomes']:9.0f} {r['rounds_recorded']:7.0f} "
              f"{r['upstream_calls']:6.0f} {r['seconds']:8.2f} "
              f"{r['outcomes_per_s']:11.1f} {r['calls_per_s']:8.1f}")  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "refine.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
