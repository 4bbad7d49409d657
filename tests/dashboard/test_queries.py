"""The dashboard's aggregations on both store backends, checked against the same figures
computed the plain way in Python."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from dashboard import queries, traffic_queries
from evals.reliability import reliability
from evals.store import Store
from tests.dashboard.seed import DATASET


@pytest.fixture(scope="module")
def rows(seeded_db: Path) -> list[tuple]:
    with Store(seeded_db).connect(read_only=True) as con:
        return con.execute(
            "SELECT o.model, o.item_id, i.task, o.score, o.error, o.cost_usd, i.split "
            "FROM outcomes o JOIN items i USING (dataset, item_id)"
        ).fetchall()


def _expected(rows: list[tuple], split: str | None) -> dict[str, dict[str, float]]:
    per_item: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    costs: dict[str, list[float]] = defaultdict(list)
    for model, item, _task, score, error, cost, item_split in rows:
        if split is not None and item_split != split:
            continue
        per_item[model][item].append(None if error else score)
        costs[model].append(cost)
    out = {}
    for model, items in per_item.items():
        means = [sum(s or 0.0 for s in samples) / len(samples) for samples in items.values()]
        out[model] = {
            "accuracy": sum(means) / len(means),
            "cost_per_1k": 1000 * sum(costs[model]) / len(costs[model]),
            "reliability": reliability(items),
        }
    return out


@pytest.mark.parametrize("split", [None, "test"])
def test_model_stats_match_a_plain_python_computation(
    seeded_store: Store, rows: list[tuple], split: str | None
) -> None:
    with seeded_store.connect(read_only=True) as con:
        stats = queries.model_stats(con, DATASET, split, by_task=False).set_index("model")
    expected = _expected(rows, split)
    assert sorted(stats.index) == sorted(expected)
    for model, figures in expected.items():
        for column, value in figures.items():
            assert stats.loc[model, column] == pytest.approx(value), (model, column)
        assert (
            stats.loc[model, "accuracy_lo"] < figures["accuracy"] < stats.loc[model, "accuracy_hi"]
        )
    # The seeded models differ as designed: the big model is the most accurate and the dearest.
    assert stats["accuracy"].idxmax() == "large" and stats["cost_per_1k"].idxmax() == "large"


def test_per_task_stats_cover_every_model_and_task(seeded_store: Store) -> None:
    with seeded_store.connect(read_only=True) as con:
        stats = queries.model_stats(con, DATASET, None, by_task=True)
    assert len(stats) == 3 * 2
    assert set(stats["task"]) == {"math", "code"}
    assert stats["n_items"].sum() == 3 * 200


def test_oracle_takes_the_best_score_at_the_cheapest_model(
    seeded_store: Store, rows: list[tuple]
) -> None:
    cost = {"small": 0.0002, "medium": 0.002, "large": 0.02}
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for model, item, _task, score, _error, _cost, _split in rows:
        scores[item][model].append(score or 0.0)
    best_scores, best_costs = [], []
    for by_model in scores.values():
        means = {m: sum(v) / len(v) for m, v in by_model.items()}
        top = max(means.values())
        best_scores.append(top)
        best_costs.append(min(cost[m] for m, s in means.items() if s == top))
    with seeded_store.connect(read_only=True) as con:
        oracle = queries.oracle(con, DATASET, None)
    assert oracle is not None
    assert oracle["accuracy"] == pytest.approx(sum(best_scores) / len(best_scores))
    assert oracle["cost_per_1k"] == pytest.approx(1000 * sum(best_costs) / len(best_costs))


def test_fitted_policies_read_the_metrics_json(seeded_store: Store) -> None:
    with seeded_store.connect(read_only=True) as con:
        frame = queries.fitted_policies(con, DATASET)
    assert set(frame["name"]) == {"table-math-large", "cheap-first"}
    assert frame["accuracy"].between(0, 1).all()
    assert (frame["accuracy_lo"] < frame["accuracy"]).all()
    assert (frame["cost_per_1k"] > 0).all()


def test_traffic_aggregates_match_the_log(seeded_store: Store) -> None:
    with seeded_store.connect(read_only=True) as con:
        raw = con.execute(
            "SELECT cost_usd, baseline_cost_usd, status, fallbacks FROM requests"
        ).fetchall()
        totals = traffic_queries.traffic_totals(con, None, None)
        timeline = traffic_queries.traffic_timeline(con, None, None, 600)
        mix = traffic_queries.traffic_model_mix(con, None, None)
    assert totals["requests"] == len(raw) == timeline["requests"].sum() == mix["requests"].sum()
    assert totals["spend_usd"] == pytest.approx(sum(r[0] for r in raw))
    assert timeline["savings_usd"].sum() == pytest.approx(sum(r[1] - r[0] for r in raw))
    assert totals["errors"] == sum(r[2] >= 400 for r in raw) > 0
    assert totals["fallbacks"] == sum(r[3] for r in raw) > 0


def test_traffic_window_and_policy_filters(seeded_store: Store) -> None:
    with seeded_store.connect(read_only=True) as con:
        last = con.execute("SELECT max(created_at) FROM requests").fetchone()[0]
        recent = traffic_queries.traffic_totals(con, last, None)
        other = traffic_queries.traffic_totals(con, None, "no-such-policy")
    assert recent["requests"] == 1
    assert other["requests"] == 0


def test_eval_items_filter_by_task_and_disagreement(seeded_store: Store) -> None:
    with seeded_store.connect(read_only=True) as con:
        spread = queries.item_spread(con, DATASET)
        everything = queries.page_of_items(spread, None, False, 1000, 0)
        disputed = queries.page_of_items(spread, "math", True, 1000, 0)
        page_two = queries.page_of_items(spread, None, False, 20, 20)
        details = queries.item_details(con, DATASET, ["item-0000003"])
        responses = queries.eval_responses(con, DATASET, disputed["item_id"].head(3).tolist())
    assert len(everything) == everything["total"].iloc[0] == 200
    assert (disputed["task"] == "math").all() and (disputed["disagreement"] > 0).all()
    assert 0 < len(disputed) < 100
    assert len(page_two) == 20 and page_two["item_id"].iloc[0] == everything["item_id"].iloc[20]
    assert everything["disagreement"].is_monotonic_decreasing
    assert details.to_dict("records")[0]["reference"] == "4"
    # One row per (item, model): the first sample, with its response and score side by side.
    assert len(responses) == 3 * 3
    assert responses.groupby("item_id")["score"].agg(lambda s: s.max() - s.min()).gt(0).all()


def test_graded_scores_use_the_majority_vote_definition(store_target: str) -> None:
    """Scores other than 0/1 (a judge's 0.5) take the per-value vote path; same definition."""
    store = Store(store_target)
    samples = {
        ("a", "i1"): [0.5, 0.5, 1.0],
        ("a", "i2"): [0.25, None, 0.25],
        ("b", "i1"): [1.0, 0.0, 0.5],
        ("b", "i2"): [None, None, None],
    }
    with store.transaction() as con:
        for item in ("i1", "i2"):
            con.execute("INSERT INTO items (dataset, item_id, task) VALUES ('g', ?, 't')", [item])
        for (model, item), scores in samples.items():
            for k, score in enumerate(scores):
                con.execute(
                    "INSERT INTO outcomes (dataset, item_id, model, sample, score, cost_usd, "
                    "error) VALUES ('g', ?, ?, ?, ?, 0.001, ?)",
                    [item, model, k, score, "boom" if score is None else None],
                )
    with store.connect(read_only=True) as con:
        stats = queries.model_stats(con, "g", None, by_task=False).set_index("model")
    for model in ("a", "b"):
        by_item = {item: s for (m, item), s in samples.items() if m == model}
        assert stats.loc[model, "reliability"] == pytest.approx(reliability(by_item)), model
    assert stats.loc["a", "consistency"] == pytest.approx((2 / 3 + 1) / 2)
