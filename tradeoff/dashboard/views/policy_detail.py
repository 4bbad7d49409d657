"""Policy detail: one stored policy version: how to serve it, what it promised (held-out
figures, each with its interval on hover), what it was accepted for, and how it routes, replayed
on the very items its figures come from."""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from tradeoff.dashboard import data, queries, replay
from tradeoff.dashboard.charts import show
from tradeoff.dashboard.itemsets import of_policy
from tradeoff.dashboard.serving import serve_panel
from tradeoff.dashboard.tables import human, pct_range
from tradeoff.policies.replay.report import acceptance_clause
from tradeoff.policies.versions import history


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _ci(metrics: dict[str, Any], key: str, spec: str = ".1%") -> str | None:
    band = metrics.get(key) or [None, None]
    if band[0] is None or band[1] is None:
        return None
    return f"95% CI {format(band[0], spec)} – {format(band[1], spec)}"


def show_metrics(metrics: dict[str, Any], baseline: str | None) -> None:
    """The held-out figures recorded with the artifact by `tradeoff fit` (hover: intervals)."""
    if not metrics:
        st.info("This policy has no held-out metrics; refit it with `tradeoff fit`.")
        return
    cols = st.columns(4)
    cols[0].metric(
        "Share of the baseline's accuracy",
        _fmt(metrics.get("accuracy_vs_baseline"), ".1%"),
        help=" · ".join(
            x for x in (f"of {baseline}'s", _ci(metrics, "accuracy_vs_baseline_ci")) if x
        ),
    )
    cols[1].metric(
        "Accuracy", _fmt(metrics.get("accuracy"), ".1%"), help=_ci(metrics, "accuracy_ci")
    )
    cost = metrics.get("cost_per_request_usd")
    cost_ci = metrics.get("cost_ci") or [None, None]
    cols[2].metric(
        "Cost per 1k requests",
        "n/a" if cost is None else f"${cost * 1000:,.4f}",
        help=None
        if cost_ci[0] is None
        else f"95% CI ${cost_ci[0] * 1000:,.4f} – ${cost_ci[1] * 1000:,.4f}",
    )
    cols[3].metric(
        "Savings vs baseline",
        _fmt(metrics.get("savings_vs_baseline"), ".0%"),
        help=_ci(metrics, "savings_ci", ".0%"),
    )
    p95 = metrics.get("p95_latency_ms")
    review = ""
    if metrics.get("human_review"):
        review = f" · human review: {metrics['human_review']:.1%} of requests" + (
            f" ({_ci(metrics, 'human_review_ci')})" if _ci(metrics, "human_review_ci") else ""
        )
    st.caption(
        f"p95 latency: {'no latency recorded' if p95 is None else f'{p95:,.0f} ms'} · "
        f"reliability: {_fmt(metrics.get('reliability'), '.3f')}{review}"
    )
    st.caption(
        f"On {metrics.get('n', '?'):,} held-out items ({metrics.get('split', '?')}), never used "
        "to fit the policy. Hover a figure for its 95% interval."
    )


def show_tasks(metrics: dict[str, Any]) -> None:
    """Every task's kept share with its interval, on the same held-out items (lowest first):
    a promise on the average can hide a task where the policy is much worse."""
    tasks = metrics.get("tasks") or []
    if len(tasks) < 2:
        return
    frame = pd.DataFrame(
        {
            "Task": [t["task"] for t in tasks],
            "Items": [t["n"] for t in tasks],
            "Kept accuracy": [_fmt(t.get("kept"), ".1%") for t in tasks],
            "Kept 95% CI": [pct_range(*(t.get("kept_ci") or [None, None])) for t in tasks],
            "Savings": [_fmt(t.get("savings"), ".0%") for t in tasks],
            "Note": ["too few items to judge" if t.get("too_small") else "" for t in tasks],
        }
    )
    st.subheader("Per task")
    st.caption("Held-out items of each task, lowest kept share of the baseline's accuracy first.")
    st.dataframe(frame, hide_index=True, width="stretch")


def show_acceptance(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    accepted = metrics.get("acceptance") or {}
    bounds = accepted.get("bounds") or {}
    text = f"Accepted for `{row['requirement']}` against baseline `{row['baseline']}`"
    if bounds:
        text += ": " + acceptance_clause(accepted, str(row["baseline"])) + "."
    elif row["requirement"]:
        text += " (the bound it was accepted at was not recorded: a fit from before it was)."
    st.markdown(text)


def show_routing(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    dataset = row["dataset"]
    if not dataset:
        st.info("This policy names no dataset, so there is nothing to replay it on.")
        return
    items = of_policy(metrics)
    if items is None:
        st.info(
            "This policy does not record the items it was measured on, so its replay could "
            "not be on the same items as its figures; refit it with `tradeoff fit`."
        )
        return
    try:
        decisions, total = replay.decisions(row["artifact"], dataset, items)
    except replay.ReplayUnavailable as exc:
        st.warning(f"Cannot replay this policy here: {exc}")
        return
    joined = data.query(queries.decision_outcomes, dataset, decisions, row["baseline"])
    if joined.empty:
        st.info(f"No items of {dataset} with outcomes in {items.label()} to replay it on.")
        return
    sample = (
        f"all {total:,}"
        if len(joined) == total
        else f"a stable sample of {len(joined):,} of the {total:,}"
    )
    st.caption(
        f"Replayed on {sample} items of {items.label()}: the held-out items its figures above "
        "come from. The first model each plan calls; cascades escalate from there."
    )
    mix = joined.groupby(["task", "model"], as_index=False).size()
    show(
        st,
        alt.Chart(mix)
        .mark_bar()
        .encode(
            y=alt.Y("task:N", title=None, axis=alt.Axis(labelOverlap=False, labelLimit=240)),
            x=alt.X(
                "size:Q", stack="normalize", title="share of requests", axis=alt.Axis(format="%")
            ),
            color=alt.Color(
                "model:N",
                scale=alt.Scale(scheme="tableau10"),
                legend=alt.Legend(orient="bottom", title="model"),
            ),
            tooltip=[
                alt.Tooltip("task:N"),
                alt.Tooltip("model:N"),
                alt.Tooltip("size:Q", title="requests"),
            ],
        )
        .properties(title="Routing mix per task", height=alt.Step(20)),
    )
    costs = joined.groupby("model", as_index=False).agg(cost=("cost", "sum"), size=("cost", "size"))
    show(
        st,
        alt.Chart(costs)
        .mark_bar()
        .encode(
            x=alt.X("cost:Q", title="USD on these items", axis=alt.Axis(format="$.3~g")),
            y=alt.Y("model:N", title=None, axis=alt.Axis(labelLimit=260)),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("cost:Q", format="$.4f", title="USD"),
                alt.Tooltip("size:Q", title="requests"),
            ],
        )
        .properties(title="Cost per model", height=alt.Step(26)),
    )
    total_cost, base_total = joined["cost"].sum(), joined["baseline_cost"].sum()
    if base_total:
        st.caption(
            f"Total ${total_cost:.4f} vs ${base_total:.4f} had every item gone to "
            f"{row['baseline']}."
        )
    lost = joined[
        (joined["cost"] < joined["baseline_cost"]) & (joined["score"] < joined["baseline_score"])
    ]
    st.subheader("Where a cheaper model lost accuracy")
    st.caption(
        f"{len(lost):,} of {len(joined):,} items: the policy chose a model cheaper than "
        f"{row['baseline']} and scored lower than {row['baseline']} did."
    )
    if not lost.empty:
        per = lost.groupby(["task", "model"], as_index=False).size()
        st.dataframe(
            human(per, {"task": "Task", "model": "Model chosen", "size": "Items"}),
            hide_index=True,
            width="stretch",
        )


def choose_version(name: str) -> tuple[str, int | None, int | None]:
    """(policy_id, version, serving version) of the chosen version of `name`."""
    rows = data.query(queries.policy_versions, name)
    states = {v.version: v.state for v in data.library(history, name)}
    serving = next((v for v, s in states.items() if s == "serving"), None)
    options = rows.to_dict("records")
    labels = [
        f"version {int(r['version'])} · {states.get(int(r['version']), '?')} · {r['source']}"
        if pd.notna(r["version"])
        else f"{r['policy_id']} (no version)"
        for r in options
    ]
    default = next(
        (k for k, r in enumerate(options) if pd.notna(r["version"]) and r["version"] == serving),
        len(options) - 1,
    )
    picked = st.selectbox(
        "Version",
        range(len(options)),
        index=default,
        format_func=labels.__getitem__,
        key=f"policy_version_{name}",
    )
    chosen = options[picked]
    version = None if pd.isna(chosen["version"]) else int(chosen["version"])
    return str(chosen["policy_id"]), version, serving


def show_history(name: str) -> None:
    rows = data.library(history, name)
    if len(rows) < 2:
        return
    frame = pd.DataFrame(
        [
            {
                "Version": r.version,
                "State": r.state,
                "Source": r.source,
                "Family": r.family,
                "Created (UTC)": r.created_at,
                "Promised share of baseline's accuracy": pct_range(
                    *(r.promised.get("accuracy_vs_baseline_ci") or [None, None])
                ),
            }
            for r in rows
        ]
    )
    with st.expander(f"All {len(rows)} versions (the Loop page says what each change did)"):
        st.dataframe(frame, hide_index=True, width="stretch")


def render() -> None:
    st.title("Policy detail")
    data.require_store()
    names = data.query(queries.policy_names)
    if names.empty:
        st.info(
            "No fitted policies in the store yet. Run `tradeoff demo`, `tradeoff fit`, or the "
            "Fit button on the Tradeoffs page."
        )
        st.stop()
    # Policies of the dataset chosen on the other pages come first.
    dataset = st.session_state.get("dataset")
    records = sorted(names.to_dict("records"), key=lambda r: r["dataset"] != dataset)
    labels = {r["name"]: f"{r['name']} · {r['family']} · {r['dataset']}" for r in records}
    left, right = st.columns([2, 1])
    with left:
        name = st.selectbox("Policy", list(labels), format_func=labels.__getitem__, key="policy")
    with right:
        policy_id, version, serving = choose_version(name)
    row = data.query(queries.policy_row, policy_id)
    if row is None:
        st.error("That policy is no longer in the store; pick another.")
        st.stop()
    artifact = json.loads(row["artifact"])
    metrics = json.loads(row["metrics"]) if row["metrics"] else artifact.get("metrics") or {}
    state = "serving" if version is not None and version == serving else "not serving"
    st.markdown(
        f"**{row['name']}**{f' version {version}' if version else ''} ({state}) — family "
        f"`{row['family']}`, dataset `{row['dataset']}`, baseline `{row['baseline']}`"
    )
    if row["requirement"]:
        show_acceptance(row, metrics)
    models = list(artifact.get("models") or [])
    serve_panel(
        name=row["name"],
        version=version,
        serving_version=serving,
        artifact_json=row["artifact"],
        models=models,
        baseline=row["baseline"],
        known_models=data.query(queries.model_rows, [*models, row["baseline"] or ""]),
        store=data.store_label(),
        key="detail",
    )
    show_metrics(metrics, row["baseline"])
    show_tasks(metrics)
    show_routing(row, metrics)
    show_history(name)
    with st.expander("Artifact (JSON)"):
        st.json(artifact)


if __name__ == "__main__":
    render()
