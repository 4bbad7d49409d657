"""Dashboard responsiveness on a large store: 1M outcome rows and 100k logged requests, on a
DuckDB file and on the same rows in PostgreSQL (a throwaway local cluster), in the same run.

For each page and store backend:
- the page's queries, each on its own short read-only connection, as the app runs them;
- a Streamlit AppTest run of the page, cold (caches cleared) and on an interaction (a rerun after
  moving a control, the queries served from the cache where their arguments did not change).
Named alternatives, same run: on the DuckDB file, the same aggregation done in pandas after
loading the rows; on PostgreSQL, the server aggregating the outcomes itself in portable SQL
(the design the dashboard did not keep: it ships a dataset's rows to an in-memory DuckDB, see
dashboard/queries.py).

    python benchmarks/bench_dashboard.py [--outcomes 1000000] [--requests 100000] [--repeats 3]
                                         [--no-postgres]

Prints tables and writes benchmarks/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dashboard.seed import DATASET, MODELS, seed_store  # noqa: E402
from tests.support.copy_store import copy_store  # noqa: E402
from tests.support.postgres import Cluster, find_bin  # noqa: E402
from tradeoff.dashboard import analytics, app_path, loop_queries, queries, traffic_queries  # noqa: E402
from tradeoff.dashboard.itemsets import ItemSet  # noqa: E402
from tradeoff.evals.store import Store  # noqa: E402

SPLIT = "test"
ITEMS = ItemSet(split=SPLIT)
BASELINE = "large"


def timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `fn` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def on_short_connection(store: Store, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    with store.connect(read_only=True) as con:
        return fn(con, *args, **kw)


def page_queries(store: Store) -> dict[str, list[tuple[Callable[..., Any], tuple, dict]]]:
    """The queries each page issues on a cold load (see dashboard/views/*)."""
    sample, _ = on_short_connection(store, queries.items_for_replay, DATASET, ITEMS, 2000)
    decisions = sample.assign(model=[MODELS[i % 3].name for i in range(len(sample))])[
        ["item_id", "task", "model"]
    ]
    since = None  # the Traffic window "all time"
    with store.connect(read_only=True) as con:
        first, last = con.execute(
            "SELECT min(created_at), max(created_at) FROM requests"
        ).fetchone()
        loop_since = con.execute(
            "SELECT min(happened_at) FROM policy_events WHERE name = 'table-math-large'"
        ).fetchone()[0]
    now = last + timedelta(minutes=1)
    return {
        "Tradeoffs": [
            (queries.presence, (), {}),
            (queries.datasets_with_outcomes, (), {}),
            (queries.fitted_policies, (DATASET,), {}),
            (queries.split_sizes, (DATASET,), {}),
            (queries.models_by_accuracy, (DATASET,), {}),
            (queries.latency_recorded, (DATASET,), {}),
            (analytics.tradeoff_summary, (DATASET, ITEMS, BASELINE), {}),
        ],
        "Models x tasks": [
            (queries.presence, (), {}),
            (queries.split_sizes, (DATASET,), {}),
            (queries.fitted_policies, (DATASET,), {}),
            (queries.models_by_accuracy, (DATASET,), {}),
            (analytics.model_stats, (DATASET, ITEMS), {"by_task": True}),
        ],
        "Policy detail": [
            (queries.presence, (), {}),
            (queries.policy_names, (), {}),
            (queries.policy_versions, ("table-math-large",), {}),
            (queries.policy_row, ("pol-table-math-large",), {}),
            (queries.model_rows, (["large", "small"],), {}),
            (queries.items_for_replay, (DATASET, ITEMS, 2000), {}),
            (queries.decision_outcomes, (DATASET, decisions, BASELINE), {}),
        ],
        "Loop": [
            (queries.presence, (), {}),
            (loop_queries.events, ("table-math-large",), {}),
            (loop_queries.versions, ("table-math-large",), {}),
            (loop_queries.shadow_spend, ("table-math-large",), {}),
            (traffic_queries.traffic_timeline, (loop_since, "table-math-large", 3600, now), {}),
        ],
        "Traffic": [
            (queries.presence, (), {}),
            (traffic_queries.traffic_policies, (), {}),
            (traffic_queries.traffic_totals, (since, None), {}),
            (traffic_queries.traffic_timeline, (first, None, 86400, now), {}),
            (traffic_queries.traffic_model_mix, (since, None), {}),
            (traffic_queries.recent_errors, (since, None, 20), {}),
        ],
        "Requests": [
            (queries.presence, (), {}),
            (traffic_queries.traffic_policies, (), {}),
            (traffic_queries.request_filters, (since,), {}),
            (traffic_queries.request_page, (since, None, None, None, "any status", 50, 0), {}),
        ],
        "Eval browser": [
            (queries.presence, (), {}),
            (queries.tasks, (DATASET,), {}),
            (analytics.item_spread, (DATASET,), {}),
            (queries.item_details, (DATASET, ["item-0000001", "item-0000002"]), {}),
        ],
    }


# --- the named alternative: load the rows into pandas, then aggregate there -------------------


def _load(store: Store, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    return on_short_connection(store, lambda con: con.execute(sql, params or []).df())


def _outcome_rows(store: Store) -> pd.DataFrame:
    return _load(
        store,
        "SELECT o.model, o.item_id, i.task, i.split, o.score, o.error, o.cost_usd, o.latency_ms "
        "FROM outcomes o JOIN items i USING (dataset, item_id) WHERE o.dataset = ?",
        [DATASET],
    )


def pandas_model_stats(store: Store, by_task: bool) -> pd.DataFrame:
    rows = _outcome_rows(store)
    rows = rows[rows["split"] == SPLIT]
    rows = rows.assign(
        score=rows["score"].fillna(0.0),
        failed=rows["error"].notna(),
        passed=(rows["score"] == 1) & rows["error"].isna(),
        flunked=(rows["score"] == 0) & rows["error"].isna(),
    )
    keys = ["model", "task"] if by_task else ["model"]
    per_item = rows.groupby(["model", "task", "item_id"]).agg(
        score=("score", "mean"),
        cost=("cost_usd", "mean"),
        calls=("score", "size"),
        errors=("failed", "sum"),
        passed=("passed", "sum"),
        flunked=("flunked", "sum"),
    )
    ok = per_item["calls"] - per_item["errors"]
    per_item["agreement"] = per_item[["passed", "flunked"]].max(axis=1) / ok.where(ok > 0)
    stats = per_item.groupby(level=keys).agg(
        accuracy=("score", "mean"),
        score_sd=("score", "std"),
        cost=("cost", "mean"),
        consistency=("agreement", "mean"),
    )
    stats["p95_latency_ms"] = rows.groupby(keys)["latency_ms"].quantile(0.95)
    return stats


def pandas_tradeoffs(store: Store) -> None:
    stats = pandas_model_stats(store, by_task=False)
    rows = _outcome_rows(store)
    rows = rows[rows["split"] == SPLIT].assign(score=lambda f: f["score"].fillna(0.0))
    per = rows.groupby(["item_id", "model"], as_index=False)[["score", "cost_usd"]].mean()
    best = per.groupby("item_id")["score"].transform("max")
    oracle = per[per["score"] == best].groupby("item_id")["cost_usd"].min()
    wide = per.pivot(index="item_id", columns="model", values="score")
    ratios = wide.mean() / wide[BASELINE].mean()
    assert len(stats) and len(oracle) and len(ratios)


def pandas_policy_detail(store: Store) -> None:
    rows = _load(
        store,
        "SELECT item_id, model, score, cost_usd FROM outcomes WHERE dataset = ?",
        [DATASET],
    )
    sample, _ = on_short_connection(store, queries.items_for_replay, DATASET, ITEMS, 2000)
    decisions = sample.assign(model=[MODELS[i % 3].name for i in range(len(sample))])
    per = rows.groupby(["item_id", "model"], as_index=False)[["score", "cost_usd"]].mean()
    chosen = decisions.merge(per, on=["item_id", "model"], how="left")
    base = per[per["model"] == BASELINE].rename(columns={"score": "b_score", "cost_usd": "b_cost"})
    assert len(chosen.merge(base.drop(columns="model"), on="item_id", how="left"))


def pandas_traffic(store: Store) -> None:
    log = _load(store, "SELECT * FROM requests")
    totals = (len(log), log["cost_usd"].sum(), log["baseline_cost_usd"].sum())
    timeline = (
        log.set_index("created_at")
        .resample("1D")
        .agg(
            {
                "request_id": "size",
                "cost_usd": "sum",
                "baseline_cost_usd": "sum",
                "latency_ms": "max",
            }
        )
    )
    timeline["p95"] = log.set_index("created_at")["latency_ms"].resample("1D").quantile(0.95)
    mix = log.groupby("model").agg(requests=("request_id", "size"), spend=("cost_usd", "sum"))
    errors = log[log["status"] >= 400].sort_values("created_at").tail(20)
    assert totals and len(timeline) and len(mix) and len(errors) >= 0


def pandas_loop(store: Store) -> None:
    pairs = _load(store, "SELECT * FROM loop_pairs WHERE policy = 'table-math-large'")
    spend = pairs.sort_values("graded_at")["shadow_cost_usd"].fillna(0).cumsum()
    log = _load(store, "SELECT * FROM requests WHERE policy = 'table-math-large'")
    per_hour = log.set_index("created_at").resample("1h")[["cost_usd", "baseline_cost_usd"]].sum()
    assert len(spend) and len(per_hour)


def pandas_requests(store: Store) -> None:
    log = _load(store, "SELECT * FROM requests")
    page = log.sort_values(["created_at", "request_id"], ascending=[False, True]).head(50)
    values = (sorted(log["model"].dropna().unique()), sorted(log["task"].dropna().unique()))
    assert len(page) and values


def pandas_eval_browser(store: Store) -> None:
    rows = _load(
        store, "SELECT item_id, model, score FROM outcomes WHERE dataset = ?", [DATASET]
    ).assign(score=lambda f: f["score"].fillna(0.0))
    per = rows.groupby(["item_id", "model"])["score"].mean()
    spread = per.groupby(level="item_id").agg(["max", "min", "mean"])
    spread["disagreement"] = spread["max"] - spread["min"]
    page = spread[spread["disagreement"] > 0].sort_values("disagreement", ascending=False)
    assert len(page.head(20))


# --- the named alternative on PostgreSQL: the server aggregates the outcomes itself -----------
# Portable SQL computing the heavy first pass of each page (per (model, item) figures; the item
# spread) in PostgreSQL, as the dashboard did before shipping rows to DuckDB won this benchmark.

_PG_OUTCOMES = """
    SELECT o.model, o.item_id, i.task, coalesce(o.score, 0) AS score,
           (o.error IS NOT NULL) AS failed, o.cost_usd, o.latency_ms
    FROM outcomes o JOIN (SELECT item_id, task FROM items WHERE dataset = $dataset
                          AND ($split IS NULL OR split = $split)) i ON i.item_id = o.item_id
    WHERE o.dataset = $dataset
"""
_PG_PER_ITEM = f"""
    WITH o AS ({_PG_OUTCOMES})
    SELECT model, min(task) AS task, item_id, avg(score) AS score, avg(cost_usd) AS cost,
           count(*) AS calls, count(*) FILTER (WHERE failed) AS errors,
           CAST(greatest(count(*) FILTER (WHERE score = 1 AND NOT failed),
                         count(*) FILTER (WHERE score = 0 AND NOT failed)) AS DOUBLE PRECISION)
               / nullif(count(*) FILTER (WHERE NOT failed), 0) AS agreement
    FROM o GROUP BY model, item_id
"""
_PG_LATENCY = f"""
    SELECT model{{task}}, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
    FROM ({_PG_OUTCOMES}) r GROUP BY model{{task}}
"""
_PG_SPREAD = """
    WITH per AS (SELECT item_id, model, avg(coalesce(score, 0)) AS score
                 FROM outcomes WHERE dataset = $dataset GROUP BY item_id, model)
    SELECT p.item_id, min(i.task) AS task, count(*) AS n_models, avg(p.score) AS mean_score,
           max(p.score) - min(p.score) AS disagreement
    FROM per p JOIN items i ON i.dataset = $dataset AND i.item_id = p.item_id
    GROUP BY p.item_id
"""


HEAVY = {"Tradeoffs": "tradeoff_summary", "Models x tasks": "model_stats",
         "Eval browser": "item_spread"}  # fmt: skip


def postgres_aggregates(store: Store, page: str) -> None:
    params = {"dataset": DATASET, "split": SPLIT}
    with store.connect(read_only=True) as con:
        if page == "Eval browser":
            con.execute(_PG_SPREAD, {"dataset": DATASET}).df()
            return
        con.execute(_PG_PER_ITEM, params).df()
        task = ", task" if page == "Models x tasks" else ""
        con.execute(_PG_LATENCY.format(task=task), params).df()


PANDAS: dict[str, Callable[[Store], Any]] = {
    "Tradeoffs": pandas_tradeoffs,
    "Models x tasks": lambda store: pandas_model_stats(store, by_task=True),
    "Policy detail": pandas_policy_detail,
    "Loop": pandas_loop,
    "Traffic": pandas_traffic,
    "Requests": pandas_requests,
    "Eval browser": pandas_eval_browser,
}

# --- AppTest: the page as Streamlit runs it -------------------------------------------------------

PAGE_FILES = {
    "Tradeoffs": None,
    "Models x tasks": "views/models_tasks.py",
    "Policy detail": "views/policy_detail.py",
    "Loop": "views/loop.py",
    "Traffic": "views/traffic.py",
    "Requests": "views/requests.py",
    "Eval browser": "views/eval_browser.py",
}


def _interact(page: str, at: Any) -> None:
    """One user interaction per page: a control that changes what is shown."""
    if page == "Tradeoffs":
        at.slider(key="acc_share").set_value(at.slider(key="acc_share").value - 5)
    elif page == "Models x tasks":
        at.toggle[0].set_value(not at.toggle[0].value)
    elif page == "Policy detail":
        at.selectbox(key="policy").select("cheap-first")
    elif page == "Loop":
        at.selectbox(key="loop_policy").select("cheap-first")
    elif page == "Traffic":
        at.selectbox(key="traffic_window").select("all time")
    elif page == "Requests":
        at.selectbox(key="requests_status").select("upstream failures (5xx)")
    else:
        at.toggle(key="browse_disputed").set_value(not at.toggle(key="browse_disputed").value)


def apptest_times(page: str, repeats: int, target: str) -> tuple[float, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["TRADEOFF_DB"] = target
    cold, warm = [], []
    for _ in range(repeats):
        at = AppTest.from_file(str(app_path()), default_timeout=120)
        # A first run pays AppTest's own start (it scans installed packages for components,
        # about 1 s here), which a running server pays once at startup: not timed.
        at.run()
        if PAGE_FILES[page] is not None:
            at.switch_page(PAGE_FILES[page])
        st.cache_data.clear()
        st.cache_resource.clear()
        start = time.perf_counter()
        at.run()
        cold.append(time.perf_counter() - start)
        if at.exception or at.error:
            raise RuntimeError(f"{page}: {[e.value for e in [*at.exception, *at.error]]}")
        _interact(page, at)
        start = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - start)
    return statistics.median(cold), statistics.median(warm)


def measure(
    store: Store, target: str, backend: str, repeats: int, pages: list[str] | None = None
) -> list[dict[str, Any]]:
    results = []
    for page, calls in page_queries(store).items():
        if pages and page not in pages:
            continue
        per_query = {
            fn.__name__: timed(
                lambda f=fn, a=a, k=k: on_short_connection(store, f, *a, **k), repeats
            )
            for fn, a, k in calls
        }
        queries_s = sum(per_query.values())
        row: dict[str, Any] = {
            "page": page,
            "backend": backend,
            "queries_s": round(queries_s, 4),
            "per_query_s": {k: round(v, 4) for k, v in per_query.items()},
        }
        if backend == "duckdb":
            pandas_s = timed(lambda p=page: PANDAS[p](store), max(1, repeats - 1))
            row["alternative"] = "pandas: load the rows, aggregate in pandas"
            row["alternative_s"] = round(pandas_s, 4)
        elif page in HEAVY:
            # Compared with the page's one heavy query, the only one the alternative replaces.
            row["compared_with"] = HEAVY[page]
            row["alternative"] = "PostgreSQL aggregates the outcomes itself (portable SQL)"
            row["alternative_s"] = round(
                timed(lambda p=page: postgres_aggregates(store, p), repeats), 4
            )
        cold_s, warm_s = apptest_times(page, repeats, target)
        row.update(apptest_cold_s=round(cold_s, 4), apptest_interaction_s=round(warm_s, 4))
        results.append(row)
        print(f"  measured {page} on {backend}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true", help="Measure the DuckDB file only.")
    parser.add_argument(
        "--page", action="append", dest="pages", help="Measure only this page (repeatable)."
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dashboard.json"))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    db = workdir / "big.duckdb"
    samples = 2
    n_items = args.outcomes // (len(MODELS) * samples)
    start = time.perf_counter()
    store = seed_store(db, n_items=n_items, samples=samples, n_requests=args.requests)
    seeded_s = time.perf_counter() - start
    counts = on_short_connection(store, queries.overview)
    print(
        f"store: {counts['outcomes']:,} outcomes, {counts['items']:,} items, "
        f"{counts['requests']:,} requests ({db.stat().st_size / 1e6:.0f} MB, seeded in "
        f"{seeded_s:.1f}s)"
    )
    stores: list[tuple[str, Store, str]] = [("duckdb", store, str(db))]
    cluster = None
    pg_bin = None if args.no_postgres else find_bin()
    if pg_bin is not None:
        cluster = Cluster(pg_bin).start()
        url = cluster.create_database("bench")
        start = time.perf_counter()
        pg_store = Store(url)
        copy_store(store, pg_store)
        with pg_store.connect() as con:
            con.execute("ANALYZE")
        print(f"copied into PostgreSQL in {time.perf_counter() - start:.1f}s", flush=True)
        stores.append(("postgres", pg_store, url))
    elif not args.no_postgres:
        print("PostgreSQL binaries not found: measuring the DuckDB file only", flush=True)

    results = []
    try:
        for backend, s, target in stores:
            results += measure(s, target, backend, args.repeats, args.pages)
    finally:
        if cluster is not None:
            cluster.stop()

    header = (
        f"{'page':<16}{'store':<10}{'queries':>9}{'alternative':>13}{'ratio':>7}"
        f"{'AppTest cold':>14}{'interaction':>13}"
    )
    print(header)
    print("-" * len(header))
    print("(ratio = alternative / ours; on postgres, ours is the page's heavy query only)")
    for r in results:
        alt = r.get("alternative_s")
        ours = r["per_query_s"][r["compared_with"]] if "compared_with" in r else r["queries_s"]
        ratio = f"{alt / ours:6.1f}x" if alt else f"{'-':>7}"
        alt_text = f"{alt:12.3f}s" if alt else f"{'-':>13}"
        print(
            f"{r['page']:<16}{r['backend']:<10}{r['queries_s']:8.3f}s{alt_text}{ratio}"
            f"{r['apptest_cold_s']:13.3f}s{r['apptest_interaction_s']:12.3f}s"
        )
    if len(stores) > 1:
        print("PostgreSQL / DuckDB file, page queries:")
        by = {(r["page"], r["backend"]): r for r in results}
        for page in PAGE_FILES:
            if (page, "postgres") not in by:
                continue
            pg, dk = by[(page, "postgres")], by[(page, "duckdb")]
            print(
                f"  {page:<16}{pg['queries_s'] / dk['queries_s']:5.1f}x queries, "
                f"{pg['apptest_cold_s'] / dk['apptest_cold_s']:4.1f}x cold page, "
                f"{pg['apptest_interaction_s'] / dk['apptest_interaction_s']:4.1f}x interaction"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "dashboard",
                "command": "python benchmarks/bench_dashboard.py "
                f"--outcomes {args.outcomes} --requests {args.requests} --repeats {args.repeats}",
                "store": {**counts, "bytes": db.stat().st_size},
                "split": SPLIT,
                "backends": [b for b, _, _ in stores],
                "postgres": "local throwaway cluster (tests/support/postgres.py: fsync off), "
                "same machine",
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "duckdb": duckdb.__version__,
                },
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    for path in workdir.iterdir():
        path.unlink()
    workdir.rmdir()


if __name__ == "__main__":
    main()
