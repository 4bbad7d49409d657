"""Eval browser: each item with every model's response and score side by side."""

from __future__ import annotations

import streamlit as st

from tradeoff.dashboard import analytics, data, queries
from tradeoff.dashboard.tables import human, latency

PAGE_SIZE = 20
RESPONSE_COLUMNS = {
    "model": "Model",
    "response": "Response",
    "score": "Score",
    "error": "Error",
    "cost_usd": "Cost (USD)",
    "latency_ms": "Latency (ms)",
}


def render() -> None:
    st.title("Eval browser")
    _, datasets = data.require_outcomes()
    dataset = data.choose_dataset(datasets)
    tasks = data.query(queries.tasks, dataset)
    left, middle, right = st.columns([2, 2, 1])
    task = left.selectbox("Task", ["all tasks", *tasks], key="browse_task")
    only_disputed = middle.toggle("Only items where models disagree", key="browse_disputed")
    page = int(right.number_input("Page", min_value=1, value=1, step=1, key="browse_page"))

    spread = data.query(analytics.item_spread, dataset)
    items = queries.page_of_items(
        spread,
        None if task == "all tasks" else task,
        only_disputed,
        PAGE_SIZE,
        (page - 1) * PAGE_SIZE,
    )
    if items.empty:
        st.info("No items match these filters." if page == 1 else "No more items.")
        return
    ids = items["item_id"].tolist()
    items = items.merge(data.query(queries.item_details, dataset, ids), on="item_id")
    total = int(items["total"].iloc[0])
    st.caption(
        f"{total:,} items match; most disputed first (disagreement = best minus worst model "
        f"score). Page {page} of {-(-total // PAGE_SIZE)}."
    )
    responses = data.query(queries.eval_responses, dataset, ids)
    by_item = {key: group for key, group in responses.groupby("item_id")}
    for position, item in enumerate(items.to_dict("records")):
        title = (
            f"{item['item_id']} · {item['task']} · mean score {item['mean_score']:.2f} · "
            f"disagreement {item['disagreement']:.2f}"
        )
        with st.expander(title, expanded=position == 0):
            st.markdown(f"**Prompt**\n\n{item['prompt']}")
            st.markdown(
                f"**Reference:** `{item['reference']}` · **grader:** `{item['grader']}` · "
                f"split: {item['split']}"
            )
            rows = by_item.get(item["item_id"])
            if rows is not None:
                rows = rows.assign(
                    error=rows["error"].fillna(""),
                    latency_ms=rows["latency_ms"].map(latency),
                )
                st.dataframe(human(rows, RESPONSE_COLUMNS), hide_index=True, width="stretch")


if __name__ == "__main__":
    render()
