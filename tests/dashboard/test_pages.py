"""Every page through Streamlit's AppTest, on real DuckDB stores: seeded, empty, missing, locked."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import data
from evals.store import Store
from tests.dashboard.seed import seed_store

OpenPage = Callable[..., AppTest]
PAGES = [
    None,
    "views/models_tasks.py",
    "views/policy_detail.py",
    "views/traffic.py",
    "views/eval_browser.py",
]


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Each test starts with cold caches (they are process-wide)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def chart_bytes(at: AppTest) -> bytes:
    """The Tradeoffs chart as sent to the browser (spec and Arrow data)."""
    return bytes(at.get("vega_lite_chart")[0].proto.SerializeToString())


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def recommendation(at: AppTest) -> str:
    """The recommended option and the savings sentence."""
    return "\n".join(m.value for m in at.markdown if "Recommended" in m.value or "keeps" in m.value)


def test_tradeoffs_recommends_and_reacts_to_the_accuracy_control(
    seeded_db: Path, open_page: OpenPage
) -> None:
    at = open_page(seeded_db)
    assert_clean(at)
    assert at.title[0].value == "Tradeoffs"
    assert len(charts(at)) == 1
    first = recommendation(at)
    assert "Recommended: medium" in first
    assert "medium keeps 95% of large's accuracy (95% CI" in first
    assert "at 90% less cost, on 60 test items" in first

    at.slider(key="acc_share").set_value(100).run()
    assert_clean(at)
    strict = recommendation(at)
    assert "Recommended: large" in strict
    assert "keeps 100% of large's accuracy (95% CI 100%–100%) at 0% less cost" in strict

    at.slider(key="acc_share").set_value(60).run()
    assert "Recommended: small" in recommendation(at)
    assert "accuracy >= 60% of baseline" in at.code[0].value  # the CLI line follows the controls


def test_tradeoffs_latency_cap_can_make_the_requirement_infeasible(
    seeded_db: Path, open_page: OpenPage
) -> None:
    at = open_page(seeded_db)
    at.checkbox(key="use_lat").check().run()
    at.number_input(key="lat_cap").set_value(0.1).run()
    assert_clean(at)
    assert "No model or fitted policy meets this requirement" in texts(at)
    assert "p95_latency <= 0.1s" in at.code[0].value


def test_baseline_choice_is_shared_between_pages(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/models_tasks.py")
    at.selectbox(key="_baseline_models").select("medium").run()
    at.switch_page("views/tradeoffs.py").run()
    assert_clean(at)
    assert at.selectbox(key="_baseline_tradeoffs").value == "medium"
    assert "of medium's accuracy" in recommendation(at)


def test_models_by_tasks_draws_four_heatmaps(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/models_tasks.py")
    assert_clean(at)
    assert [t.label for t in at.tabs] == [
        "accuracy",
        "cost per 1k requests (USD)",
        "p95 latency (ms)",
        "consistency",
    ]
    assert len(charts(at)) == 4
    at.toggle[0].set_value(True).run()
    assert_clean(at)
    table = at.dataframe[0].value
    large = table[table["model"] == at.selectbox(key="_baseline_models").value]
    assert large["accuracy"].tolist() == pytest.approx([1.0, 1.0])


def test_policy_detail_shows_held_out_metrics_and_routing(
    seeded_db: Path, open_page: OpenPage
) -> None:
    at = open_page(seeded_db, "views/policy_detail.py")
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert labels == [
        "Accuracy",
        "Cost per 1k requests",
        "Savings vs baseline",
        "Reliability",
        "p95 latency",
    ]
    at.selectbox(key="policy_id").select("pol-table-math-large").run()
    assert_clean(at)
    body = texts(at)
    assert "accuracy >= 90% of baseline" in body
    assert "Replayed on 60 items of the test split" in body
    assert "Where a cheaper model lost accuracy" in [s.value for s in at.subheader]
    assert len(charts(at)) == 3  # models used, routing mix per task, cost breakdown


def test_traffic_shows_the_request_log(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/traffic.py")
    assert_clean(at)
    at.selectbox(key="traffic_window").select("all time").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "500"
    assert metrics["Errors"] == "10" and metrics["Fallbacks"] == "25"
    assert metrics["Saved vs baseline"] == "$7.4250"
    assert len(charts(at)) == 5
    at.selectbox(key="traffic_policy").select("table-math-large").run()
    assert {m.label: m.value for m in at.metric}["Requests"] == "500"


def test_eval_browser_filters(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db, "views/eval_browser.py")
    assert_clean(at)
    assert "200 items match" in texts(at)
    assert len(at.expander) == 20
    at.selectbox(key="browse_task").select("math").run()
    at.toggle(key="browse_disputed").set_value(True).run()
    assert_clean(at)
    caption = next(c.value for c in at.caption if "items match" in c.value)
    disputed = int(caption.split()[0])
    assert 0 < disputed < 100
    # Every model's response and score, side by side.
    assert set(at.dataframe[0].value["model"]) == {"small", "medium", "large"}


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_store_says_what_to_run(
    tmp_path: Path, open_page: OpenPage, page: str | None
) -> None:
    db = tmp_path / "empty.duckdb"
    Store(db).migrate()
    at = open_page(db, page)
    assert_clean(at)
    body = texts(at)
    assert "tradeoff demo" in body or "tradeoff serve" in body


@pytest.mark.parametrize("page", PAGES)
def test_a_missing_store_is_explained(
    tmp_path: Path, open_page: OpenPage, page: str | None
) -> None:
    db = tmp_path / "nowhere.duckdb"
    at = open_page(db, page)
    assert_clean(at)
    assert f"No store at `{db}`" in texts(at)
    assert not db.exists()  # looking does not create it


def test_a_locked_store_gives_one_clear_line(
    tmp_path: Path, open_page: OpenPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "locked.duckdb"
    Store(db).migrate()
    monkeypatch.setattr(data, "LOCK_TIMEOUT_S", 0.5)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; con = duckdb.connect({str(db)!r}); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        at = open_page(db)
        assert not at.exception
        assert len(at.error) == 1
        assert "locked by another process" in at.error[0].value
    finally:
        holder.communicate("", timeout=10)


def test_fit_button_fits_with_the_cli_code_and_saves(tmp_path: Path, open_page: OpenPage) -> None:
    db = tmp_path / "fit.duckdb"
    seed_store(db)
    at = open_page(db)
    with Store(db).connect(read_only=True) as con:
        before = {r[0] for r in con.execute("SELECT name FROM policies").fetchall()}
    at.button(key="fit_button").click().run(timeout=120)
    assert_clean(at)
    with Store(db).connect(read_only=True) as con:
        rows = con.execute("SELECT name, requirement, baseline FROM policies").fetchall()
    new = [r for r in rows if r[0] not in before]
    assert len(new) == 1
    name, requirement, baseline = new[0]
    assert requirement.startswith("accuracy >= 90% of baseline") and baseline == "large"
    assert "Fitted and saved to the store: keeps" in at.success[0].value
    # The page redrew with the new policy among the options on the chart.
    assert name.encode() in chart_bytes(at)
    # Policy detail replays what fit_policy produced (its own family, params and metrics).
    at.switch_page("views/policy_detail.py").run()
    ids = at.selectbox(key="policy_id").options
    assert_clean(at)
    assert any(name in label for label in ids)


def test_frontier_sweeps_come_from_the_policies_code(seeded_db: Path, open_page: OpenPage) -> None:
    at = open_page(seeded_db)
    at.toggle(key="show_sweeps").set_value(True).run(timeout=60)
    assert_clean(at)
    data = chart_bytes(at)
    assert b"frontier sweep" in data and b"task_table lambda=" in data


def test_traffic_shows_new_requests_on_the_next_rerun(tmp_path: Path, open_page: OpenPage) -> None:
    """The cache is keyed on the store file's modification: a proxy's new rows show up."""
    db = tmp_path / "live.duckdb"
    seed_store(db, n_items=10, n_requests=30)
    at = open_page(db, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    assert {m.label: m.value for m in at.metric}["Requests"] == "30"
    with Store(db).transaction() as con:
        con.execute(
            "INSERT INTO requests (request_id, created_at, requested_model, model, status, "
            "cost_usd, baseline_cost_usd, latency_ms) "
            "SELECT 'new-' || r::VARCHAR, now()::TIMESTAMP, 'small', 'small', 200, 0.0002, 0.02, "
            "100 FROM range(12) t(r)"
        )
    at.run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Requests"] == "42"


def test_policy_detail_of_a_policy_without_data(tmp_path: Path, open_page: OpenPage) -> None:
    """A hand-written artifact (no dataset, no metrics) is shown, not a traceback."""
    db = tmp_path / "bare.duckdb"
    seed_store(db, n_items=10, n_requests=0)
    artifact = '{"version": 1, "name": "bare", "family": "single", "params": {"model": "small"}}'
    with Store(db).transaction() as con:
        con.execute("DELETE FROM policies")
        con.execute(
            "INSERT INTO policies (policy_id, name, family, artifact) "
            "VALUES ('bare', 'bare', 'single', ?)",
            [artifact],
        )
    at = open_page(db, "views/policy_detail.py")
    assert_clean(at)
    body = texts(at)
    assert "no held-out metrics" in body and "names no dataset" in body


def test_every_page_reads_a_postgres_store(seeded_pg: str, open_page: OpenPage) -> None:
    """The same pages on the seeded rows copied into PostgreSQL give the same answers."""
    at = open_page(seeded_pg)
    assert_clean(at)
    assert "medium keeps 95% of large's accuracy (95% CI" in recommendation(at)
    assert "at 90% less cost, on 60 test items" in recommendation(at)
    at = open_page(seeded_pg, "views/traffic.py")
    at.selectbox(key="traffic_window").select("all time").run()
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Requests"], metrics["Saved vs baseline"]) == ("500", "$7.4250")
    at = open_page(seeded_pg, "views/policy_detail.py")
    at.selectbox(key="policy_id").select("pol-table-math-large").run()
    assert_clean(at)
    assert "Replayed on 60 items of the test split" in texts(at)
    at = open_page(seeded_pg, "views/eval_browser.py")
    assert_clean(at)
    assert "200 items match" in texts(at)
    assert_clean(open_page(seeded_pg, "views/models_tasks.py"))


def test_a_missing_postgres_store_is_explained(pg_url: str, open_page: OpenPage) -> None:
    at = open_page(pg_url)
    assert_clean(at)
    assert f"No store at `{pg_url}`" in texts(at)
    assert not Store(pg_url).exists()  # looking does not create it
