"""Models x tasks: accuracy, cost, latency and consistency of every model on every task."""

from __future__ import annotations

import streamlit as st

from tradeoff.dashboard import analytics, data, queries
from tradeoff.dashboard.charts import heatmap, show
from tradeoff.dashboard.tables import NO_LATENCY

# (column, title, number format, color scheme); the schemes run light = worse for accuracy and
# consistency, light = cheaper/faster for cost and latency.
METRICS = (
    ("accuracy", "accuracy", ".0%", "greens"),
    ("cost_per_1k", "cost per 1k requests (USD)", "$.3~g", "oranges"),
    ("p95_latency_ms", "p95 latency (ms)", ",.0f", "purples"),
    ("consistency", "consistency", ".2f", "blues"),
)


def render() -> None:
    st.title("Models x tasks")
    _, datasets = data.require_outcomes()
    dataset = data.choose_dataset(datasets)
    items = data.choose_items(dataset)
    frame = data.query(analytics.model_stats, dataset, items, by_task=True)
    if frame.empty:
        st.info(f"No outcomes on {items.label()} of {dataset}; pick other items.")
        st.stop()
    ranked = data.query(queries.models_by_accuracy, dataset)
    baseline = data.choose_baseline(ranked, ranked[0], key="_baseline_models")

    relative = st.toggle(f"Accuracy relative to {baseline} (share of its accuracy per task)")
    accuracy_title = "accuracy"
    if relative:
        base = frame[frame["model"] == baseline].set_index("task")["accuracy"]
        frame = frame.assign(accuracy=frame["accuracy"] / frame["task"].map(base))
        accuracy_title = f"share of {baseline}'s accuracy"

    tabs = st.tabs([accuracy_title if c == "accuracy" else t for c, t, _, _ in METRICS])
    for tab, (column, title, fmt, scheme) in zip(tabs, METRICS, strict=True):
        title = accuracy_title if column == "accuracy" else title
        if frame[column].isna().all():
            what = NO_LATENCY if column == "p95_latency_ms" else f"no {title} recorded"
            tab.info(f"{what.capitalize()} for {dataset}: nothing to draw.")
            continue
        show(tab, heatmap(frame, column, title, fmt, scheme))
    st.caption(
        f"On {items.label()} of {dataset}. Consistency: mean share of an item's repeated "
        "samples that agree with its most frequent score (1.0 with one sample per item). "
        "Errors score 0 in accuracy."
    )
    with st.expander("Table"):
        table = frame.assign(
            accuracy=(frame["accuracy"] * 100).round(1),
            p95_latency_ms=frame["p95_latency_ms"].map(
                lambda v: NO_LATENCY if v != v or v is None else f"{v:,.0f}"
            ),
        )
        st.dataframe(
            table[
                [
                    "model",
                    "task",
                    "n_items",
                    "accuracy",
                    "cost_per_1k",
                    "p95_latency_ms",
                    "consistency",
                    "reliability",
                ]
            ].rename(
                columns={
                    "model": "Model",
                    "task": "Task",
                    "n_items": "Items",
                    "accuracy": f"{accuracy_title.capitalize()} (%)",
                    "cost_per_1k": "Cost per 1k requests (USD)",
                    "p95_latency_ms": "p95 latency (ms)",
                    "consistency": "Consistency",
                    "reliability": "Reliability",
                }
            ),
            hide_index=True,
            width="stretch",
        )


if __name__ == "__main__":
    render()
