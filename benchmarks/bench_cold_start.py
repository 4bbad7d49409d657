"""Cold start (issue 24): how many requests, and how much shadow spend, a promotion takes when
a team starts from the one expensive model its app calls, at 5% and 20% shadow rates.

Three models behind the upstream stand-in (`tests.support.upstream`, in process): `big` (the
baseline, $10 / $30 per 1M input / output tokens), `cheap` ($0.15 / $0.60) answering as big does
on `--agree` of the requests (98%; a hash of the prompt decides which), and `wrong` (cheap's
prices) on 30% of them. `tradeoff explore` stores version 1 (big alone, "accuracy >= 95% of
baseline"); the in-process proxy serves it with `--shadow RATE --shadow-grader agreement`;
requests arrive one at a time in blocks of `--block`. After each block, once the status says a
cheaper policy is proven on enough requests for a refit's test (`refit_ready`), `tradeoff refit
--promote` runs (as a user reading `tradeoff status` would), until one promotes. Per rate, over `--seeds` runs (each its own prompts and sampling
seed): requests served until the promotion, requests shadowed, calls of each candidate, the
shadow spend (USD, and as a share of what the served requests cost), the refits tried, and the
promoted version's held-out sentence.

    python benchmarks/bench_cold_start.py      # prints a table, writes benchmarks/results/cold_start.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BIG = {"input_cost_per_token": 10e-6, "output_cost_per_token": 30e-6}
SMALL = {"input_cost_per_token": 0.15e-6, "output_cost_per_token": 0.6e-6}
REQUIRE = "accuracy >= 95% of baseline"


def share(prompt: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}:{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def last_user(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def rules(agree: float) -> list[Any]:
    from tests.support.upstream import Rule

    def cheap(body: dict[str, Any]) -> str:
        return "Paris" if share(last_user(body), "cheap") < agree else "Lyon"

    def wrong(body: dict[str, Any]) -> str:
        return "Paris" if share(last_user(body), "wrong") < 0.3 else "Marseille"

    return [
        Rule(model="big", reply="Paris"),
        Rule(model="cheap", reply=cheap),
        Rule(model="wrong", reply=wrong),
    ]


def settle(loop: Any, timeout_s: float = 60.0) -> None:
    """Until every sampled request's shadow calls are graded and written."""
    deadline = time.monotonic() + timeout_s
    while loop.shadow.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the last jobs out of the queue finish their calls
    loop.writer.wait_written(timeout_s)


def one_run(rate: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    import tradeoff
    from tests.router.support import Proxy, write_models
    from tests.support.upstream import Upstream
    from tradeoff.evals.store import open_store
    from tradeoff.policies.loop.refit import refit_policy
    from tradeoff.router.settings import LoopSettings, Settings

    with tempfile.TemporaryDirectory() as tmp, Upstream(rules(args.agree)) as up:
        config = write_models(
            Path(tmp) / "models.yaml", up.url, ["big", "cheap", "wrong"], big=BIG, cheap=SMALL,
            wrong=SMALL,
        )  # fmt: skip
        db = Path(tmp) / "cold.duckdb"
        explore = ["explore", "desk", "--baseline", "big", "--candidates", "cheap,wrong",
                   "--require", REQUIRE, "--config", str(config), "--db", str(db)]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            assert tradeoff.main(explore) == 0
        settings = Settings(
            stored_policies=("desk",), config_path=config, db_path=db, reload_interval_s=0.2,
            log_flush_s=0.1,
            loop=LoopSettings(shadow_rate=rate, shadow_grader="agreement", seed=seed,
                              write_every_s=0.2, refresh_s=0.2),
        )  # fmt: skip
        from openai import OpenAI

        store = open_store(db)
        sent, refits, promoted, started = 0, 0, None, time.perf_counter()
        with Proxy(settings) as proxy:
            client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
            loop = proxy.state.loop
            assert loop is not None and loop.shadow is not None
            while sent < args.max_requests and promoted is None:
                for i in range(sent, sent + args.block):
                    question = f"[{seed}-{i}] What is the capital of France?"
                    client.chat.completions.create(
                        model="desk", messages=[{"role": "user", "content": question}]
                    )
                sent += args.block
                settle(loop)
                explored = loop.status()["policies"][0]["explore"]
                if not explored["refit_ready"]:
                    continue
                refits += 1
                result = refit_policy(store, "desk", promote_it=True, n_trials=5, seed=seed)
                if result.promoted:
                    promoted = result
            proxy.flush()
            with store.connect() as con:
                shadowed, spend = con.execute(
                    "SELECT count(*), coalesce(sum(shadow_cost_usd), 0) FROM loop_pairs"
                ).fetchone()
                served_usd = con.execute(
                    "SELECT coalesce(sum(cost_usd), 0) FROM requests WHERE status = 200"
                ).fetchone()[0]
                agreement = con.execute(
                    "SELECT avg(score) FROM outcomes WHERE dataset = 'traffic-desk' "
                    "AND model = 'cheap'"
                ).fetchone()[0]
            drops = {c["model"]: c.get("dropped_after") for c in explored["candidates"]}
        return {
            "rate": rate,
            "seed": seed,
            "promoted": promoted is not None,
            "requests": sent,
            "shadowed": int(shadowed),
            "calls": {m: int(up.model_counts[m]) for m in ("cheap", "wrong")},
            "cheap_agreement": float(agreement or 0.0),  # on the requests it was asked
            "wrong_dropped_after": drops.get("wrong"),
            "shadow_spend_usd": float(spend),
            "served_usd": float(served_usd),
            "spend_share": float(spend) / float(served_usd) if served_usd else None,
            "refits": refits,
            "sentence": promoted.fit.get("sentence") if promoted else None,
            "test": promoted.reason if promoted else None,
            "seconds": time.perf_counter() - started,
        }


def spread(values: list[float], fmt: str) -> str:
    mid = statistics.median(values)
    if min(values) == max(values):
        return format(mid, fmt)
    return f"{format(mid, fmt)} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.05,0.2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--agree", type=float, default=0.98)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cold_start.json"))
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import logging

    logging.disable(logging.WARNING)
    runs = []
    for rate in [float(r) for r in args.rates.split(",")]:
        for seed in range(args.seeds):
            run = one_run(rate, seed, args)
            runs.append(run)
            print(
                f"rate {rate:g} seed {seed}: promoted={run['promoted']} after {run['requests']} "
                f"requests (cheap agreeing on {run['cheap_agreement']:.1%}), "
                f"{run['shadowed']} shadowed, calls {run['calls']}, shadow "
                f"${run['shadow_spend_usd']:.4f} ({run['spend_share']:.1%} of served), "
                f"{run['refits']} refits, {run['seconds']:.0f} s",
                file=sys.stderr,
            )
    print(
        "| shadow rate | requests to a promotion | shadowed | cheap calls | wrong calls "
        "| shadow spend | of served spend | refits |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate in sorted({r["rate"] for r in runs}):
        mine = [r for r in runs if r["rate"] == rate and r["promoted"]]
        if not mine:
            print(f"| {rate:.0%} | none within {args.max_requests} | | | | | | |")
            continue
        print(
            f"| {rate:.0%} | {spread([r['requests'] for r in mine], ',.0f')} "
            f"| {spread([r['shadowed'] for r in mine], ',.0f')} "
            f"| {spread([r['calls']['cheap'] for r in mine], ',.0f')} "
            f"| {spread([r['calls']['wrong'] for r in mine], ',.0f')} "
            f"| ${spread([r['shadow_spend_usd'] for r in mine], '.4f')} "
            f"| {spread([100 * r['spend_share'] for r in mine], '.1f')}% "
            f"| {spread([r['refits'] for r in mine], '.0f')} |"
        )
    for r in runs:
        if r["sentence"]:
            print(
                f"- rate {r['rate']:g} seed {r['seed']} (cheap agreeing on "
                f"{r['cheap_agreement']:.1%} of what it was asked): {r['sentence']}"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"config": {k: v for k, v in vars(args).items() if k != "out"}, "runs": runs}
    out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
