"""Policy detail: what a fitted policy promised (held-out metrics) and how it routes."""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, queries, replay


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def show_metrics(metrics: dict[str, Any]) -> None:
    """The held-out figures recorded with the artifact by `tradeoff fit`."""
    if not metrics:
        st.info("This policy has no held-out metrics; refit it with `tradeoff fit`.")
        return
    ci = metrics.get("accuracy_ci") or [None, None]
    cols = st.columns(5)
    cols[0].metric("Accuracy", _fmt(metrics.get("accuracy"), ".1%"))
    cols[0].caption(f"95% CI {_fmt(ci[0], '.1%')} – {_fmt(ci[1], '.1%')}")
    cost = metrics.get("cost_per_request_usd")
    cols[1].metric("Cost per 1k requests", "n/a" if cost is None else f"${cost * 1000:.4f}")
    cols[2].metric("Savings vs baseline", _fmt(metrics.get("savings_vs_baseline"), ".0%"))
    cols[3].metric("Reliability", _fmt(metrics.get("reliability"), ".3f"))
    p95 = metrics.get("p95_latency_ms")
    cols[4].metric("p95 latency", "n/a" if p95 is None else f"{p95:,.0f} ms")
    st.caption(
        f"On {metrics.get('n', '?')} held-out items (split: {metrics.get('split', '?')}), "
        "never used to fit the policy."
    )
    used = metrics.get("models_used") or {}
    if used:
        frame = pd.DataFrame({"model": list(used), "share": list(used.values())})
        st.altair_chart(
            alt.Chart(frame)
            .mark_bar()
            .encode(x=alt.X("share:Q", axis=alt.Axis(format="%")), y="model:N")
            .properties(title="Answers kept per model (held-out)"),
            width="stretch",
            height=90 + 30 * len(frame),
        )


def show_routing(row: dict[str, Any], metrics: dict[str, Any]) -> None:
    dataset = row["dataset"]
    if not dataset:
        st.info("This policy names no dataset, so there is nothing to replay it on.")
        return
    known = data.query(queries.splits, dataset)
    split = metrics.get("split") if metrics.get("split") in known else None
    try:
        decisions = replay.decisions(row["artifact"], dataset, split)
    except replay.ReplayUnavailable as exc:
        st.warning(f"Cannot replay this policy here: {exc}")
        return
    joined = data.query(queries.decision_outcomes, dataset, decisions, row["baseline"])
    if joined.empty:
        st.info(f"No items of {dataset} with outcomes to replay this policy on.")
        return
    where = f"items of the {split} split" if split else "items"
    st.caption(
        f"Replayed on {len(joined):,} {where} (a stable sample of at most "
        f"{replay.SAMPLE:,}): the first model each plan calls; cascades escalate from there."
    )

    mix = joined.groupby(["task", "model"], as_index=False).size()
    st.altair_chart(
        alt.Chart(mix)
        .mark_bar()
        .encode(
            y="task:N",
            x=alt.X(
                "size:Q", stack="normalize", title="share of requests", axis=alt.Axis(format="%")
            ),
            color="model:N",
            tooltip=["task", "model", "size"],
        )
        .properties(title="Routing mix per task"),
        width="stretch",
        height=90 + 26 * mix["task"].nunique(),
    )

    costs = joined.groupby(["model", "task"], as_index=False)["cost"].sum()
    st.altair_chart(
        alt.Chart(costs)
        .mark_bar()
        .encode(x=alt.X("cost:Q", title="USD on these items"), y="model:N", color="task:N")
        .properties(title="Cost breakdown"),
        width="stretch",
        height=110 + 30 * costs["model"].nunique(),
    )
    total, base_total = joined["cost"].sum(), joined["baseline_cost"].sum()
    if base_total:
        st.caption(
            f"Total ${total:.4f} vs ${base_total:.4f} had every item gone to {row['baseline']}."
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
        st.dataframe(
            lost.groupby(["task", "model"], as_index=False).size(), hide_index=True, width="stretch"
        )
        st.dataframe(lost.head(50), hide_index=True, width="stretch")


def render() -> None:
    st.title("Policy detail")
    data.require_store()
    policies = data.query(queries.policy_list)
    if policies.empty:
        st.info(
            "No fitted policies in the store yet. Run `tradeoff demo`, `tradeoff fit`, or the "
            "Fit button on the Tradeoffs page."
        )
        st.stop()
    labels = {
        r[
            "policy_id"
        ]: f"{r['name']} · {r['family']} · {r['dataset']} · {r['created_at']:%Y-%m-%d %H:%M}"
        for r in policies.to_dict("records")
    }
    # Policies of the dataset chosen on the other pages come first.
    dataset = st.session_state.get("dataset")
    dataset_of = dict(zip(policies["policy_id"], policies["dataset"], strict=True))
    ids = sorted(labels, key=lambda pid: dataset_of[pid] != dataset)
    chosen = st.selectbox("Policy", ids, format_func=labels.__getitem__, key="policy_id")
    row = data.query(queries.policy_row, chosen)
    if row is None:
        st.error("That policy is no longer in the store; pick another.")
        st.stop()
    artifact = json.loads(row["artifact"])
    metrics = json.loads(row["metrics"]) if row["metrics"] else artifact.get("metrics") or {}

    st.markdown(
        f"**{row['name']}** — family `{row['family']}`, dataset `{row['dataset']}`, "
        f"baseline `{row['baseline']}`  \nRequirement: `{row['requirement']}`"
    )
    show_metrics(metrics)
    show_routing(row, metrics)
    with st.expander("Artifact (JSON)"):
        st.json(artifact)


if __name__ == "__main__":
    render()
