"""The traffic pages (Loop, Traffic, Requests) through AppTest, and every page on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from tests.dashboard.pages import (
    PAGES,
    OpenPage,
    assert_clean,
    chart_specs,
    metrics,
    recommendation,
    texts,
)
from tests.dashboard.seed import seed_store
from tradeoff.evals.store import Store


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def expected_traffic(db: Path | str, policy: str | None = None) -> dict[str, str]:
    """The Traffic figures recomputed from the request log, row by row, the plain way."""
    where, params = ("WHERE policy = ?", [policy]) if policy else ("", [])
    with Store(db).connect(read_only=True) as con:
        rows = con.execute(
            f"SELECT policy, cost_usd, baseline_cost_usd, status FROM requests {where}", params
        ).fetchall()
    paired = [(c, b) for _, c, b, _ in rows if c is not None and b is not None]
    spend, base = sum(c for c, _ in paired), sum(b for _, b in paired)
    return {
        "Requests": f"{len(rows):,}",
        "Spend": f"${sum(r[1] or 0 for r in rows):,.4f}",
        "Saved vs baseline": f"${base - spend:,.4f}",
        "savings": f"{1 - spend / base:.1%} less",
        "Pass-through spend": f"${sum(r[1] or 0 for r in rows if r[0] is None):,.4f}",
        "Client errors (4xx)": f"{sum(400 <= r[3] < 500 for r in rows):,}",
        "Upstream failures (5xx)": f"{sum(r[3] >= 500 for r in rows):,}",
    }


def test_traffic_savings_count_only_requests_with_a_baseline(
    seeded_db: Path, open_page: OpenPage
) -> None:
    """The issue's "63% less": pass-through requests have no baseline and count in no saving."""
    at = open_page(seeded_db, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    assert_clean(at)
    expected = expected_traffic(seeded_db)
    shown = metrics(at)
    for label in ("Requests", "Spend", "Saved vs baseline", "Pass-through spend",
                  "Client errors (4xx)", "Upstream failures (5xx)"):  # fmt: skip
        assert shown[label] == expected[label], label
    saved = next(m for m in at.metric if m.label == "Saved vs baseline")
    assert saved.proto.delta == expected["savings"]
    assert "Errors" not in shown  # client and upstream errors are never one count
    assert len(chart_specs(at)) == 5


def test_traffic_time_axes_span_the_window_in_utc(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/traffic.py")  # default: the last 24 hours
    assert_clean(at)
    timed = [s for s in chart_specs(at) if s["encoding"]["x"]["type"] == "temporal"
             if "encoding" in s]  # fmt: skip
    assert len(timed) == 4
    for spec in timed:
        x = spec["encoding"]["x"]
        assert x["title"] == "time (UTC)" and x["scale"]["type"] == "utc"
        start, end = x["scale"]["domain"]
        assert start < end and start.endswith("Z")
    assert "Buckets of 30 min, in UTC; a bucket without requests counts zero" in texts(at)


def test_traffic_filters_by_policy_and_pass_through(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    at.selectbox(key="traffic_policy").select("table-math-large").run()
    assert_clean(at)
    routed = expected_traffic(seeded_db, "table-math-large")
    assert metrics(at)["Requests"] == routed["Requests"]
    assert metrics(at)["Saved vs baseline"] == routed["Saved vs baseline"]
    assert "table-math-large version 3 promised" in texts(at)  # the promise beside the live one
    at.selectbox(key="traffic_policy").select("(pass-through)").run()
    assert_clean(at)
    assert metrics(at)["Saved vs baseline"] == "$0.0000"
    assert metrics(at)["Spend"] == metrics(at)["Pass-through spend"]


def test_traffic_shows_new_requests_on_the_next_rerun(tmp_path: Path, open_page: OpenPage) -> None:
    """The cache is keyed on the store file's modification: a proxy's new rows show up."""
    db = tmp_path / "live.duckdb"
    seed_store(db, n_items=10, n_requests=30)
    at = open_page(db, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    assert metrics(at)["Requests"] == "30"
    with Store(db).transaction() as con:
        con.execute(
            "INSERT INTO requests (request_id, created_at, requested_model, model, status, "
            "cost_usd, baseline_cost_usd, latency_ms) "
            "SELECT 'new-' || r::VARCHAR, now()::TIMESTAMP, 'small', 'small', 200, 0.0002, 0.02, "
            "100 FROM range(12) t(r)"
        )
    at.run()
    assert_clean(at)
    assert metrics(at)["Requests"] == "42"


def test_the_request_log_lists_why_what_and_how_much(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/requests.py")
    assert_clean(at)
    assert "500 requests match" in texts(at)
    table = at.dataframe[0].value
    assert list(table.columns[:8]) == [
        "Time (UTC)", "Policy", "Answered by", "Task", "Status", "Cost (USD)", "Cost estimated",
        "Baseline's cost (USD)",
    ]  # fmt: skip
    assert {"Routing reason", "Input tokens", "Output tokens"} <= set(table.columns)
    assert set(table["Cost estimated"]) <= {"estimated", "billed"}
    at.selectbox(key="requests_policy").select("(pass-through)").run()
    at.selectbox(key="requests_status").select("answered (2xx)").run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["Policy"]) == {"— pass-through"}
    assert set(table["Routing reason"]) == {"pass-through: the client named this model"}
    assert table["Baseline's cost (USD)"].isna().all()
    at.selectbox(key="requests_policy").select("table-math-large").run()
    at.selectbox(key="requests_model").select("large").run()
    at.selectbox(key="requests_task").select("math").run()
    at.selectbox(key="requests_status").select("upstream failures (5xx)").run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) > 0 and (table["Status"] >= 500).all()
    at.selectbox(key="requests_task").select("code").run()
    assert "No requests match these filters." in texts(at)


def test_the_loop_page_compares_live_with_promised(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/loop.py")
    assert_clean(at)
    summary = at.dataframe[0].value.set_index("Policy")
    assert sorted(summary.index) == ["cheap-first", "table-math-large", "wide-policy"]
    live = summary.loc["table-math-large"]
    assert live["Version"] == 3 and live["Shadow pairs"] == 150 and live["Live savings"]
    assert at.selectbox(key="loop_policy").value == "table-math-large"  # the busiest first
    body = texts(at)
    assert "**table-math-large** version 3" in body
    titles = [s.get("title") for s in chart_specs(at)]
    assert titles[0] == "Kept accuracy, live vs promised"
    assert any("Savings per bucket" in str(t) for t in titles)
    assert any("Shadow spend" in str(t) for t in titles)
    # Each promotion: what it changed, against the version serving before, and why.
    assert "v2 rejected" in body and "math: large → medium" in body
    assert "v3 promoted" in body and "code: small → medium" in body
    assert "refit passed its test" in body


def test_the_loop_page_without_a_serving_policy(tmp_path: Path, open_page: OpenPage) -> None:
    db = tmp_path / "no-policy.duckdb"
    seed_store(db, n_items=10, n_requests=0)
    with Store(db).transaction() as con:
        for table in ("policies", "policy_versions", "policy_events", "loop_pairs"):
            con.execute(f"DELETE FROM {table}")
    at = open_page(db, "views/loop.py")
    assert_clean(at)
    assert "No policy is serving yet" in texts(at)


def test_the_loop_page_shows_an_explored_policys_candidates(
    tmp_path: Path, open_page: OpenPage
) -> None:
    from tests.policies.loop.test_explore import explored, shadowed
    from tradeoff.policies.loop.explore import explorations
    from tradeoff.policies.loop.explorer import Explorer

    store = explored(tmp_path)  # `tradeoff explore desk --baseline big --candidates right,wrong`
    shadowed(store, 0, 40, ("right", "wrong"))
    with store.connect() as con:
        Explorer(explorations(con)["desk"]).refresh(store)  # a proxy's race drops `wrong`
    shadowed(store, 40, 80, ("right",))
    at = open_page(tmp_path / "s.duckdb", "views/loop.py")
    assert_clean(at)
    body = texts(at)
    assert "is proven on 120 of your requests" in body
    assert "exploring right, wrong in shadow against big" in body
    table = at.dataframe[1].value.set_index("Candidate")
    assert (
        table.loc["right", "State"] == "proven" and table.loc["right", "Requests measured"] == 120
    )
    assert table.loc["wrong", "State"] == "dropped"
    assert str(table.loc["wrong", "Why dropped"]).startswith(
        "after 40 requests: dominated by right"
    )


def test_every_page_reads_a_postgres_store(seeded_pg: str, open_page: OpenPage) -> None:
    """The same pages on the seeded rows copied into PostgreSQL give the same answers."""
    at = open_page(seeded_pg)
    assert_clean(at)
    assert "Recommended: keep large" in recommendation(at)
    at = open_page(seeded_pg, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    assert_clean(at)
    expected = expected_traffic(seeded_pg)
    assert (metrics(at)["Requests"], metrics(at)["Saved vs baseline"]) == (
        expected["Requests"],
        expected["Saved vs baseline"],
    )
    at = open_page(seeded_pg, "views/policy_detail.py")
    at.selectbox(key="policy").select("cheap-first").run()
    assert_clean(at)
    assert "Replayed on all 60 items of the test split" in texts(at)
    at = open_page(seeded_pg, "views/loop.py")
    assert_clean(at)
    assert "v3 promoted" in texts(at)
    at = open_page(seeded_pg, "views/requests.py")
    assert_clean(at)
    assert "500 requests match" in texts(at)
    at = open_page(seeded_pg, "views/eval_browser.py")
    assert_clean(at)
    assert "200 items match" in texts(at)
    assert_clean(open_page(seeded_pg, "views/models_tasks.py"))
    assert len(PAGES) == 7


def test_a_missing_postgres_store_is_explained(pg_url: str, open_page: OpenPage) -> None:
    at = open_page(pg_url)
    assert_clean(at)
    assert f"No store at `{pg_url}`" in texts(at)
    assert not Store(pg_url).exists()  # looking does not create it


def test_traffic_shows_each_client_keys_spend_in_its_period(
    tmp_path: Path, open_page: OpenPage
) -> None:
    """`serve --keys` publishes its keys; the page sums each key's logged cost this period."""
    from tradeoff.router.keys.keyfile import KeySpec
    from tradeoff.router.keys.usage import publish_keys

    db = tmp_path / "keys.duckdb"
    seed_store(db, n_items=10, n_requests=30)
    store = Store(db)
    publish_keys(store, [KeySpec("team-a", "sk-a", rpm=60, budget_usd=5.0, budget_period="day"),
                         KeySpec("team-b", "sk-b")])  # fmt: skip
    with store.transaction() as con:
        con.execute(
            "INSERT INTO requests (request_id, created_at, requested_model, model, status, "
            "cost_usd, attempts, key_name) SELECT 'k-' || r::VARCHAR, now()::TIMESTAMP, 'small', "
            "'small', 200, 0.25, 1, 'team-a' FROM range(4) t(r)"
        )
    at = open_page(db, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    assert_clean(at)
    assert "Spend per client key" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "Key" in d.value.columns)
    rows = {r["Key"]: r for r in table.to_dict("records")}
    assert rows["team-a"]["Requests"] == 4 and rows["team-a"]["Spent"] == "$1.0000"
    assert rows["team-a"]["Budget left"] == "$4.0000" and rows["team-a"]["Budget"] == "$5.0000"
    assert rows["team-b"]["Requests"] == 0 and rows["team-b"]["Budget"] == "none"
