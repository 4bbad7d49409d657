"""The dashboard's light reads: portable SQL the store runs itself (DuckDB or PostgreSQL).

Each function takes an open store connection (the caller opens a short read-only one per query,
since the proxy writes the same store) and returns something small whatever the store size.
The passes over every outcome of a dataset are in `dashboard.analytics`; the request log's
reads in `dashboard.traffic_queries`, the loop's in `dashboard.loop_queries`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import pandas as pd

from tradeoff.dashboard.itemsets import ItemSet, hash_members, of_policy
from tradeoff.evals.store import Connection
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import serving_all

Con = Connection
# Datasets a refit materialises (`refit-<name>`, replaced on each refit): the loop's working
# data, not something to compare models on.
REFIT_PREFIX = "refit-"


def overview(con: Con) -> dict[str, int]:
    """Row counts that tell an empty store from a populated one."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM datasets), (SELECT count(*) FROM items), "
        "(SELECT count(*) FROM outcomes), (SELECT count(*) FROM policies), "
        "(SELECT count(*) FROM requests)"
    ).fetchone()
    assert row is not None
    return dict(zip(("datasets", "items", "outcomes", "policies", "requests"), row, strict=True))


_TABLES = ("datasets", "items", "outcomes", "policies", "requests")


def presence(con: Con) -> dict[str, bool]:
    """Which tables have rows: what tells an empty store from a populated one, without counting
    a million outcomes on every page load."""
    row = con.execute(
        "SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {t})" for t in _TABLES)
    ).fetchone()
    assert row is not None
    return dict(zip(_TABLES, (bool(v) for v in row), strict=True))


def datasets_with_outcomes(con: Con) -> list[str]:
    """Datasets with outcomes, refits' working copies left out."""
    rows = con.execute("SELECT DISTINCT dataset FROM outcomes ORDER BY dataset").fetchall()
    return [r[0] for r in rows if not str(r[0]).startswith(REFIT_PREFIX)]


def models_by_accuracy(con: Con, dataset: str) -> list[str]:
    """The dataset's models, most accurate first (a cheap outcome-level mean, for defaults)."""
    rows = con.execute(
        "SELECT model FROM outcomes WHERE dataset = ? GROUP BY model "
        "ORDER BY avg(coalesce(score, 0)) DESC, model",
        [dataset],
    ).fetchall()
    return [r[0] for r in rows]


def split_sizes(con: Con, dataset: str) -> dict[str | None, int]:
    """Items per split (None: items without one)."""
    rows = con.execute(
        "SELECT split, count(*) FROM items WHERE dataset = ? GROUP BY split", [dataset]
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def tasks(con: Con, dataset: str) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT task FROM items WHERE dataset = ? ORDER BY task", [dataset]
    ).fetchall()
    return [r[0] for r in rows]


def latency_recorded(con: Con, dataset: str) -> bool:
    """Whether any outcome of the dataset has a latency (imported data often has none)."""
    row = con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM outcomes WHERE dataset = ? "
        "AND latency_ms IS NOT NULL LIMIT 1) t",
        [dataset],
    ).fetchone()
    return bool(row and row[0])


# Columns of `fitted_policies` read from each policy's `metrics` JSON: (column, path, scale).
_METRICS = [
    ("n_items", ("n",), 1),
    ("accuracy", ("accuracy",), 1),
    ("accuracy_lo", ("accuracy_ci", 0), 1),
    ("accuracy_hi", ("accuracy_ci", 1), 1),
    ("cost_per_1k", ("cost_per_request_usd",), 1000),
    ("reliability", ("reliability",), 1),
    ("p95_latency_ms", ("p95_latency_ms",), 1),
    ("kept", ("accuracy_vs_baseline",), 1),
    ("kept_lo", ("accuracy_vs_baseline_ci", 0), 1),
    ("kept_hi", ("accuracy_vs_baseline_ci", 1), 1),
    ("savings", ("savings_vs_baseline",), 1),
]


def _number(doc: Any, path: tuple[str | int, ...]) -> float | None:
    for step in path:
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return None
    return float(doc) if isinstance(doc, int | float) and not isinstance(doc, bool) else None


def accepted_share(requirement: str | None, metrics: dict[str, Any]) -> float | None:
    """The share of the baseline's accuracy a policy was accepted for, at the bound fit decided
    on: the acceptance bound recorded with it, else the requirement's own `accuracy >= R of
    baseline` (fit accepted it only if its bound met R). None when neither says."""
    acceptance = metrics.get("acceptance") if isinstance(metrics, dict) else None
    bounds = acceptance.get("bounds") if isinstance(acceptance, dict) else None
    shares: list[float] = []
    try:
        constraints = parse_requirement(requirement).constraints if requirement else []
    except Exception:  # a hand-edited file: no requirement to read
        constraints = []
    for c in constraints:
        if c.metric == "accuracy" and c.relative and c.lower_bound:
            bound = bounds.get(str(c)) if isinstance(bounds, dict) else None
            shares.append(float(bound) if isinstance(bound, int | float) else c.value)
    return max(shares) if shares else None


def fitted_policies(con: Con, dataset: str) -> pd.DataFrame:
    """One row per policy name fitted on `dataset`: its serving version (else its newest), with
    the held-out metrics, the item set they were measured on and what it was accepted for."""
    frame = con.execute(
        "SELECT p.policy_id, p.name, p.family, p.requirement, p.baseline, p.created_at, "
        "CAST(p.metrics AS VARCHAR) AS metrics, v.version "
        "FROM policies p LEFT JOIN policy_versions v "
        "ON v.policy_id = p.policy_id AND v.name = p.name "
        "WHERE p.dataset = ? ORDER BY p.created_at DESC, v.version DESC",
        [dataset],
    ).df()
    serving = {name: s.version for name, s in serving_all(con).items()}
    frame["serving"] = [
        pd.notna(v) and serving.get(n) == int(v)
        for n, v in zip(frame["name"], frame["version"], strict=True)
    ]
    # Per name: the serving version when it is on this dataset, else the newest.
    frame = frame.sort_values(["serving", "created_at"], ascending=False, kind="stable")
    frame = frame.drop_duplicates("name").sort_values("name").reset_index(drop=True)
    docs = [json.loads(m) if isinstance(m, str) else {} for m in frame.pop("metrics")]
    docs = [d if isinstance(d, dict) else {} for d in docs]
    for column, path, scale in _METRICS:
        values = [_number(d, path) for d in docs]
        frame[column] = pd.Series(
            [None if v is None else v * scale for v in values], index=frame.index, dtype=float
        )
    frame["n_items"] = frame["n_items"].astype("Int64")
    frame["version"] = frame["version"].astype("Int64")
    frame["items"] = pd.Series([of_policy(d) for d in docs], index=frame.index, dtype=object)
    frame["accepted_share"] = pd.Series(
        [accepted_share(r, d) for r, d in zip(frame["requirement"], docs, strict=True)],
        index=frame.index,
        dtype=float,
    )
    frame["keeps_baseline"] = [
        bool((d.get("acceptance") or {}).get("keeps_baseline")) for d in docs
    ]
    return frame


def policy_names(con: Con) -> pd.DataFrame:
    """Every policy name with its newest row's family, dataset and time (refit candidates are
    versions of their name, not names of their own)."""
    return con.execute(
        """
        SELECT name, family, dataset, created_at FROM (
            SELECT name, family, dataset, created_at,
                   row_number() OVER (PARTITION BY name ORDER BY created_at DESC) AS nth
            FROM policies WHERE dataset IS NULL OR dataset NOT LIKE 'refit-%'
        ) newest WHERE nth = 1 ORDER BY created_at DESC, name
        """
    ).df()


def policy_versions(con: Con, name: str) -> pd.DataFrame:
    """The rows stored under `name`: (policy_id, version or null, source, created_at), oldest
    first. A row without a version predates versions (or was inserted by hand)."""
    return con.execute(
        "SELECT p.policy_id, v.version, coalesce(v.source, 'fit') AS source, p.created_at "
        "FROM policies p LEFT JOIN policy_versions v ON v.policy_id = p.policy_id "
        "AND v.name = p.name WHERE p.name = ? ORDER BY v.version, p.created_at",
        [name],
    ).df()


def policy_row(con: Con, policy_id: str) -> dict[str, Any] | None:
    """One policy: its columns, with `artifact` and `metrics` as JSON text."""
    cur = con.execute(
        "SELECT policy_id, name, family, dataset, data_hash, requirement, baseline, "
        "CAST(artifact AS VARCHAR) AS artifact, CAST(metrics AS VARCHAR) AS metrics, created_at "
        "FROM policies WHERE policy_id = ?",
        [policy_id],
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def model_rows(con: Con, names: list[str]) -> pd.DataFrame:
    """What the store knows of these models (litellm string, api_base, tier, price overrides):
    the models.yaml stub of a policy is written from it."""
    return con.execute(
        "SELECT name, litellm_model, api_base, tier, input_cost_per_token, "
        "output_cost_per_token, gpu_hourly_usd FROM models WHERE name = ANY($names) ORDER BY name",
        {"names": names},
    ).df()


def _stable_order(item_id: str) -> str:
    return hashlib.md5(item_id.encode()).hexdigest()


def items_for_replay(
    con: Con, dataset: str, items: ItemSet, limit: int
) -> tuple[pd.DataFrame, int]:
    """Up to `limit` items of the item set that have outcomes (a stable pseudo-random sample)
    with the text a policy routes on; and how many items the set has in all."""
    ids = [
        r[0]
        for r in con.execute(
            "SELECT item_id FROM items WHERE dataset = $dataset "
            "AND ($split IS NULL OR split = $split) "
            "AND item_id IN (SELECT item_id FROM outcomes WHERE dataset = $dataset)",
            {"dataset": dataset, "split": items.split},
        ).fetchall()
    ]
    if items.is_hash:
        ids = [i for i, keep in zip(ids, hash_members(ids, items), strict=True) if keep]
    sample = sorted(ids, key=_stable_order)[:limit]
    frame = con.execute(
        "SELECT item_id, task, coalesce(prompt, CAST(messages AS VARCHAR), '') AS prompt "
        "FROM items WHERE dataset = $dataset AND item_id = ANY($ids)",
        {"dataset": dataset, "ids": sample},
    ).df()
    order = {item_id: k for k, item_id in enumerate(sample)}
    frame = frame.sort_values("item_id", key=lambda s: s.map(order)).reset_index(drop=True)
    return frame, len(ids)


def decision_outcomes(
    con: Con, dataset: str, decisions: pd.DataFrame, baseline: str | None
) -> pd.DataFrame:
    """Join a replay's decisions (item_id, task, model) with the chosen and baseline outcomes.

    One row per decision: chosen model's mean score and cost, the baseline's, for the same item.
    """
    con.register("decisions", decisions[["item_id", "task", "model"]])
    try:
        return con.execute(
            """
            WITH per AS (
                SELECT item_id, model, avg(coalesce(score, 0)) AS score, avg(cost_usd) AS cost
                FROM outcomes WHERE dataset = $dataset
                  AND item_id IN (SELECT item_id FROM decisions)
                GROUP BY item_id, model
            )
            SELECT d.item_id, d.task, d.model, c.score, c.cost,
                   b.score AS baseline_score, b.cost AS baseline_cost
            FROM decisions d
            LEFT JOIN per c ON c.item_id = d.item_id AND c.model = d.model
            LEFT JOIN per b ON b.item_id = d.item_id AND b.model = $baseline
            """,
            {"dataset": dataset, "baseline": baseline},
        ).df()
    finally:
        con.unregister("decisions")


def page_of_items(
    spread: pd.DataFrame, task: str | None, disagreement_only: bool, limit: int, offset: int
) -> pd.DataFrame:
    """Filter and page `analytics.item_spread`'s frame (in-memory DuckDB), most disputed first."""
    with duckdb.connect() as con:
        con.register("spread", spread)
        return con.execute(
            """
            SELECT *, count(*) OVER () AS total FROM spread
            WHERE ($task IS NULL OR task = $task) AND (NOT $only OR disagreement > 0)
            ORDER BY disagreement DESC, item_id
            LIMIT $limit OFFSET $offset
            """,
            {"task": task, "only": disagreement_only, "limit": limit, "offset": offset},
        ).df()


def item_details(con: Con, dataset: str, item_ids: list[str]) -> pd.DataFrame:
    return con.execute(
        """
        SELECT item_id, split, grader, reference,
               coalesce(prompt, CAST(messages AS VARCHAR)) AS prompt
        FROM items WHERE dataset = $dataset AND item_id = ANY($ids)
        """,
        {"dataset": dataset, "ids": item_ids},
    ).df()


def eval_responses(con: Con, dataset: str, item_ids: list[str]) -> pd.DataFrame:
    """Every model's first sample for the given items: response, score, error."""
    return con.execute(
        """
        SELECT item_id, model, response, score, error, cost_usd, latency_ms FROM (
            SELECT item_id, model, response, score, error, cost_usd, latency_ms,
                   row_number() OVER (PARTITION BY item_id, model
                                      ORDER BY sample, params_hash) AS nth
            FROM outcomes WHERE dataset = $dataset AND item_id = ANY($ids)
        ) first WHERE nth = 1
        ORDER BY item_id, model
        """,
        {"dataset": dataset, "ids": item_ids},
    ).df()
