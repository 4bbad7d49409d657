"""How fast `import_file` loads 100k outcome rows, beside raw DuckDB reading the same file.

    python benchmarks/bench_import.py [--rows 100000] [--repeat 3]

The named alternative (the ceiling): DuckDB's own `CREATE TABLE ... AS SELECT * FROM read_csv()`
/ `read_parquet()` into a plain table with no keys, no checks and no upsert. `import_file` also
validates every cell, de-duplicates items and upserts on primary keys in one transaction.
Prints a table and writes benchmarks/results/import.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from tradeoff.evals.importers import import_file
from tradeoff.evals.store import Store

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"


def make_rows(n_rows: int, n_models: int = 10, seed: int = 0) -> pd.DataFrame:
    """`n_rows` outcomes: n_rows / n_models items x n_models models, ~5% blank scores."""
    rng = np.random.default_rng(seed)
    n_items = n_rows // n_models
    item = np.repeat(np.arange(n_items), n_models)
    score = rng.integers(0, 2, len(item)).astype(float)
    score[rng.random(len(item)) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "item_id": [f"item-{i}" for i in item],
            "task": [f"task-{i % 12}" for i in item],
            "prompt": [f"Question {i}: " + "some words of a realistic prompt " * 4 for i in item],
            "model": [f"model-{m}" for m in np.tile(np.arange(n_models), n_items)],
            "score": score,
            "cost_usd": rng.random(len(item)) * 1e-3,
            "latency_ms": rng.random(len(item)) * 2000,
            "prompt_tokens": rng.integers(10, 500, len(item)),
            "completion_tokens": rng.integers(10, 300, len(item)),
        }
    )


def timed(fn: object, repeat: int) -> float:
    """Median seconds of `repeat` runs; fn(i) gets a fresh index for a fresh target file."""
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frame = make_rows(args.rows)
        files = {"csv": work / "outcomes.csv", "parquet": work / "outcomes.parquet"}
        frame.to_csv(files["csv"], index=False)
        frame.to_parquet(files["parquet"], index=False)
        for kind, path in files.items():
            reader = "read_csv" if kind == "csv" else "read_parquet"

            def raw(i: int, path: Path = path, reader: str = reader, kind: str = kind) -> None:
                con = duckdb.connect(str(work / f"raw-{kind}-{i}.duckdb"))
                con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?)", [str(path)])
                con.close()

            def first(i: int, path: Path = path, kind: str = kind) -> None:
                store = Store(work / f"first-{kind}-{i}.duckdb")
                store.migrate()
                import_file(store, path, "bench")

            reimport_store = Store(work / f"again-{kind}.duckdb")
            import_file(reimport_store, path, "bench")

            def again(_: int, path: Path = path, store: Store = reimport_store) -> None:
                import_file(store, path, "bench")

            ceiling = timed(raw, args.repeat)
            for case, fn in (("import_file, new store", first), ("import_file, re-import", again)):
                seconds = timed(fn, args.repeat)
                rows.append(
                    {
                        "file": kind,
                        "case": case,
                        "rows": args.rows,
                        "seconds": round(seconds, 3),
                        "rows_per_s": round(args.rows / seconds),
                        "raw_duckdb_seconds": round(ceiling, 3),
                        "ratio_vs_raw_duckdb": round(seconds / ceiling, 2),
                    }
                )
    header = (
        f"{'file':8} {'case':24} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'raw s':>7} {'x raw':>6}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['file']:8} {r['case']:24} {r['rows']:>8} {r['seconds']:>8.3f} "
            f"{r['rows_per_s']:>9} {r['raw_duckdb_seconds']:>7.3f} {r['ratio_vs_raw_duckdb']:>6.2f}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "import",
                "alternative": "raw DuckDB CREATE TABLE AS SELECT * FROM read_csv/read_parquet",
                "repeat": args.repeat,
                "python": platform.python_version(),
                "duckdb": duckdb.__version__,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
