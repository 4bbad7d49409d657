"""Models x tasks: accuracy, cost, latency and consistency of every model on every task."""

from __future__ import annotations

import streamlit as st

from dashboard import data, queries
from dashboard.charts import heatmap, heatmap_height

# (column, title, number format, color scheme); the schemes run light = worse for accuracy and
# consistency, light = cheaper/faster for cost and latency.
METRICS = (
    ("accuracy", "accuracy", ".2f", "greens"),
    ("cost_per_1k", "cost per 1k requests (USD)", ".3f", "oranges"),
    ("p95_latency_ms", "p95 latency (ms)", ".0f", "purples"),
    ("consistency", "consistency", ".2f", "blues"),
)


def render() -> None:
    st.title("Models x tasks")
    _, datasets = data.require_outcomes()
    dataset = data.choose_dataset(datasets)
    split = data.choose_split(dataset)
    frame = data.query(queries.model_stats, dataset, split, by_task=True)
    if frame.empty:
        st.info(f"No outcomes on the {split} split of {dataset}; pick another split.")
        st.stop()
    ranked = data.query(queries.models_by_accuracy, dataset)
    baseline = data.choose_baseline(ranked, ranked[0], key="_baseline_models")

    relative = st.toggle(f"Accuracy relative to {baseline} (share of its accuracy per task)")
    if relative:
        base = frame[frame["model"] == baseline].set_index("task")["accuracy"]
        frame = frame.assign(accuracy=frame["accuracy"] / frame["task"].map(base))

    tabs = st.tabs([title for _, title, _, _ in METRICS])
    for tab, (column, title, fmt, scheme) in zip(tabs, METRICS, strict=True):
        label = f"share of {baseline}'s accuracy" if relative and column == "accuracy" else title
        tab.altair_chart(
            heatmap(frame, column, label, fmt, scheme),
            width="stretch",
            height=heatmap_height(frame),
        )
    st.caption(
        "Consistency: mean share of an item's repeated samples that agree with its most "
        "frequent score (1.0 with one sample per item). Errors score 0 in accuracy."
    )
    with st.expander("Table"):
        st.dataframe(frame, hide_index=True, width="stretch")


if __name__ == "__main__":
    render()
