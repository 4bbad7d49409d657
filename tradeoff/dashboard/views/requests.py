"""Requests: the proxy's request log, one row per request, newest first, filtered by policy,
model, task and status: why it went where it did, its tokens, its cost and whether that cost
is an estimate."""

from __future__ import annotations

import streamlit as st

from tradeoff.dashboard import data, traffic_queries
from tradeoff.dashboard.tables import human
from tradeoff.dashboard.timecharts import WINDOWS, now_utc
from tradeoff.dashboard.traffic_queries import PASS_THROUGH, STATUS_CLASSES

PAGE_SIZE = 50
ANY = "any"
COLUMNS = {
    "created_at": "Time (UTC)",
    "policy": "Policy",
    "model": "Answered by",
    "task": "Task",
    "status": "Status",
    "cost_usd": "Cost (USD)",
    "cost_estimated": "Cost estimated",
    "baseline_cost_usd": "Baseline's cost (USD)",
    "prompt_tokens": "Input tokens",
    "completion_tokens": "Output tokens",
    "route_reason": "Routing reason",
    "attempts": "Attempts",
    "fallbacks": "Fallbacks",
    "latency_ms": "Latency (ms)",
    "requested_model": "Asked for",
    "protocol": "Protocol",
    "session": "Conversation",
    "error": "Error",
    "request_id": "Request id",
}


def render() -> None:
    st.title("Requests")
    if not data.require_store()["requests"]:
        st.info(
            "No requests logged yet. Start the proxy with `tradeoff serve --policy NAME` "
            "(Policy detail shows the exact command); each request it answers is listed here."
        )
        st.stop()
    top = st.columns(3)
    window = top[0].selectbox("Window", list(WINDOWS), index=4, key="requests_window")
    length = WINDOWS[window]
    since = None if length is None else now_utc() - length
    policies = data.query(traffic_queries.traffic_policies)
    policy = top[1].selectbox("Policy", [ANY, *policies, PASS_THROUGH], key="requests_policy")
    status = top[2].selectbox("Status", list(STATUS_CLASSES), key="requests_status")
    values = data.query(traffic_queries.request_filters, since)
    row = st.columns(3)
    model = row[0].selectbox("Answered by", [ANY, *values["model"]], key="requests_model")
    task = row[1].selectbox("Task", [ANY, *values["task"]], key="requests_task")
    page = int(row[2].number_input("Page", min_value=1, value=1, step=1, key="requests_page"))
    frame, total = data.query(
        traffic_queries.request_page,
        since,
        None if policy == ANY else policy,
        None if model == ANY else model,
        None if task == ANY else task,
        status,
        PAGE_SIZE,
        (page - 1) * PAGE_SIZE,
    )
    if frame.empty:
        st.info("No requests match these filters." if page == 1 else "No more requests.")
        return
    pages = -(-total // PAGE_SIZE)
    st.caption(f"{total:,} requests match; newest first. Page {page} of {pages}.")
    frame = frame.assign(
        policy=frame["policy"].fillna("— pass-through"),
        route_reason=frame["route_reason"].fillna("not recorded"),
        protocol=frame["protocol"].fillna(""),
        session=frame["session"].fillna(""),
        cost_estimated=frame["cost_estimated"]
        .map({True: "estimated", False: "billed"})
        .fillna("billed"),
    )
    st.dataframe(
        human(frame, COLUMNS),
        hide_index=True,
        width="stretch",
        column_config={
            "Cost (USD)": st.column_config.NumberColumn(format="$%.6f"),
            "Baseline's cost (USD)": st.column_config.NumberColumn(format="$%.6f"),
            "Latency (ms)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    st.caption(
        "Routing reason: the policy's own reason for its plan (a task table's entry, a learned "
        "router's predicted score, a cascade's order), pass-through when the client named a "
        "model, or the violation fallback. Cost estimated: the upstream sent no usage, so the "
        "proxy counted the tokens itself. Baseline's cost: what the policy's baseline would "
        "have charged for the same tokens (none for pass-through)."
    )


if __name__ == "__main__":
    render()
