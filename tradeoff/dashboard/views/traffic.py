"""Traffic: the proxy's request log — volume, spend and savings, model mix, latency, errors.

Savings count only requests that have a baseline (both their cost and the baseline's known);
pass-through requests (a client that named a model) are shown apart. Client errors (4xx) and
upstream failures (5xx) are counted apart. The body is a fragment that reruns itself every few
seconds, so a running proxy's requests show up without touching the page (each rerun is a few
cached aggregations).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from tradeoff.dashboard import data, loop_queries, queries, traffic_queries
from tradeoff.dashboard.charts import show
from tradeoff.dashboard.tables import human, latency, usd
from tradeoff.dashboard.timecharts import (
    SERIES,
    WINDOWS,
    bars,
    bucket_for,
    lines,
    now_utc,
    time_axis,
)
from tradeoff.dashboard.traffic_queries import PASS_THROUGH
from tradeoff.router.keys.usage import key_spend

REFRESH_S = 5


def window_bounds(window: str) -> tuple[datetime | None, datetime]:
    """(since, until) of the window; since None for all time."""
    until = now_utc() + timedelta(minutes=1)
    length = WINDOWS[window]
    return (None if length is None else until - length), until


def show_totals(totals: dict, policy: str | None) -> None:
    requests, passed = int(totals["requests"]), int(totals["pass_through"])
    cols = st.columns(4)
    cols[0].metric(
        "Requests",
        f"{requests:,}",
        help=f"{requests - passed:,} routed by a policy, {passed:,} passed through to a named "
        "model",
    )
    cols[1].metric(
        "Spend",
        usd(totals["spend_usd"]),
        help="Every request's cost, pass-through "
        f"included; {int(totals['cost_estimated']):,} of them estimated (no usage from "
        "the upstream: the proxy counted the tokens)",
    )
    savings = totals["savings"]
    cols[2].metric(
        "Saved vs baseline",
        usd(totals["saved_usd"]),
        delta=None if savings is None else f"{savings:.1%} less",
        help=f"Over the {int(totals['with_baseline']):,} requests that have a baseline "
        f"(cost {usd(totals['routed_usd'])} vs {usd(totals['baseline_usd'])} on the baseline "
        "for the same tokens). Pass-through requests have none and are not counted.",
    )
    cols[3].metric(
        "Pass-through spend",
        usd(totals["pass_through_usd"]),
        help=f"{passed:,} requests named a model rather than a policy: no baseline, so they "
        "count in no saving (nor loss).",
    )
    cols = st.columns(4)
    cols[0].metric(
        "p95 latency",
        f"{latency(totals['p95_latency_ms'])} ms"
        if totals["p95_latency_ms"] is not None
        else "no latency recorded",
    )
    for col, key, label in (
        (cols[1], "client_errors", "Client errors (4xx)"),
        (cols[2], "upstream_failures", "Upstream failures (5xx)"),
    ):
        col.metric(
            label,
            f"{int(totals[key]):,}",
            delta=f"{totals[key] / requests:.1%}" if requests else None,
            delta_color="inverse",
        )
    cols[3].metric(
        "Fallbacks",
        f"{int(totals['fallbacks']):,}",
        help=f"{int(totals['requests_with_fallback']):,} requests fell back",
    )
    if policy not in (None, PASS_THROUGH):
        promised = data.query(loop_queries.promise, policy)
        if promised and promised.get("savings") is not None:
            band = promised.get("savings_ci") or [None, None]
            ci = f" (95% CI {band[0]:.0%}–{band[1]:.0%})" if band[0] is not None else ""
            live = "none yet" if savings is None else f"{savings:.1%} less"
            st.caption(
                f"{policy} version {promised['version']} promised {promised['savings']:.0%} "
                f"less cost{ci} on held-out items; live in this window: {live}, over "
                f"{int(totals['with_baseline']):,} requests with a baseline. The Loop page "
                "follows both over time."
            )


def show_timeline(
    since: datetime | None, until: datetime, policy: str | None, totals: dict
) -> None:
    start = since if since is not None else totals["first_at"]
    end = until if since is not None else totals["last_at"] + timedelta(minutes=1)
    bucket_s = bucket_for(end - start)
    timeline = data.query(traffic_queries.traffic_timeline, start, policy, bucket_s, end)
    x = time_axis(start, end)
    left, right = st.columns(2)
    show(
        left,
        bars(
            timeline,
            {"routed": "routed by a policy", "pass_through": "pass-through"},
            x,
            "requests",
        ).properties(title="Requests"),
    )
    show(
        right,
        lines(
            timeline,
            {
                "routed_usd": "spend",
                "baseline_usd": "the baseline's cost",
            },
            x,
            "USD",
            "$.3~g",
        ).properties(title="Spend vs the baseline's cost (requests with a baseline)"),
    )
    if timeline["p95_latency_ms"].notna().any():
        show(
            left,
            lines(timeline, {"p95_latency_ms": "p95 latency"}, x, "ms", ",.0f").properties(
                title="p95 latency (gaps: no requests)"
            ),
        )
    else:
        left.info("No latency recorded in this window.")
    show(
        right,
        bars(
            timeline,
            {
                "client_errors": "client errors (4xx)",
                "upstream_failures": "upstream failures (5xx)",
                "fallbacks": "fallbacks",
            },
            x,
            "requests",
        ).properties(title="Errors and fallbacks"),
    )
    st.caption(
        f"Buckets of {_span(bucket_s)}, in UTC; a bucket without requests counts zero. "
        "Savings and the baseline's cost cover only requests that have a baseline."
    )


def _span(seconds: int) -> str:
    return (
        f"{seconds // 3600} h"
        if seconds >= 3600
        else (f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s")
    )


def show_mix(since: datetime | None, policy: str | None) -> None:
    mix = data.query(traffic_queries.traffic_model_mix, since, policy)
    mix = mix.assign(routed=mix["requests"] - mix["pass_through"])
    long = mix.melt(
        id_vars=["model", "spend_usd"],
        value_vars=["routed", "pass_through"],
        var_name="route",
        value_name="n",
    )
    long["route"] = long["route"].map(
        {"routed": "routed by a policy", "pass_through": "pass-through"}
    )
    names = ["routed by a policy", "pass-through"]
    show(
        st,
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("n:Q", title="requests", stack=True),
            y=alt.Y(
                "model:N", sort=alt.EncodingSortField("n", op="sum", order="descending"), title=None
            ),
            color=alt.Color(
                "route:N",
                scale=alt.Scale(domain=names, range=[SERIES[n] for n in names]),
                legend=alt.Legend(orient="bottom", title=None),
            ),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("route:N"),
                alt.Tooltip("n:Q", title="requests", format=","),
                alt.Tooltip("spend_usd:Q", title="spend (all routes)", format="$.4f"),
            ],
        )
        .properties(title="Model mix", height=alt.Step(26)),
    )


def show_keys() -> None:
    """Spend per client key of `serve --keys`, in each key's current budget period (every
    policy and pass-through: a key's budget covers all its requests)."""
    keys = data.library(key_spend)
    if not keys:
        return
    frame = pd.DataFrame(keys)
    frame["spent"] = frame["spent_usd"].map(usd)
    frame["budget"] = frame["budget_usd"].map(lambda b: "none" if pd.isna(b) else usd(b))
    frame["left"] = frame["budget_left_usd"].map(lambda b: "" if pd.isna(b) else usd(b))
    frame["in_flight"] = frame["in_flight_usd"].map(usd)
    frame["rpm"] = frame["rpm"].map(lambda r: "none" if pd.isna(r) else f"{int(r):,}")
    frame["period"] = frame["budget_period"] + " from " + frame["period_start"].astype(str)
    st.subheader("Spend per client key")
    st.dataframe(
        human(
            frame,
            {
                "name": "Key",
                "requests": "Requests",
                "spent": "Spent",
                "budget": "Budget",
                "left": "Budget left",
                "period": "Budget period (UTC)",
                "rpm": "Requests / minute limit",
                "refused": "Refused (429)",
                "in_flight": "Reserved in flight",
            },
        ),
        hide_index=True,
        width="stretch",
    )


@st.fragment(run_every=REFRESH_S)
def live(window: str, policy: str | None) -> None:
    since, until = window_bounds(window)
    totals = data.query(traffic_queries.traffic_totals, since, policy)
    if not totals["requests"]:
        st.info("No requests in this window.")
        return
    show_totals(totals, policy)
    show_timeline(since, until, policy, totals)
    show_mix(since, policy)
    errors = data.query(traffic_queries.recent_errors, since, policy, 20)
    if not errors.empty:
        errors = errors.assign(
            policy=errors["policy"].fillna("— pass-through"),
            model=errors["model"].fillna("— none called"),
        )
        st.subheader("Recent errors")
        st.dataframe(
            human(
                errors,
                {
                    "created_at": "Time (UTC)",
                    "policy": "Policy",
                    "model": "Model",
                    "status": "Status",
                    "attempts": "Attempts",
                    "fallbacks": "Fallbacks",
                    "error": "Error",
                },
            ),
            hide_index=True,
            width="stretch",
        )
    show_keys()
    st.caption(
        f"Refreshes every {REFRESH_S} s. Baseline cost: what each request would have cost on "
        "its policy's baseline for the same tokens (logged by the proxy). The Requests page "
        "lists each request."
    )


@st.fragment(run_every=REFRESH_S)
def wait_for_requests() -> None:
    """Until the proxy logs its first request; then the whole page draws itself."""
    if data.query(queries.presence)["requests"]:
        st.rerun()
    st.info(
        "No requests logged yet. Start the proxy with `tradeoff serve --policy NAME` (Policy "
        "detail shows the exact command) and point an OpenAI client at it; requests appear "
        "here as they arrive."
    )


def render() -> None:
    st.title("Traffic")
    if not data.require_store()["requests"]:
        wait_for_requests()
        st.stop()
    left, right = st.columns(2)
    window = left.selectbox("Window", list(WINDOWS), index=2, key="traffic_window")
    policies = data.query(traffic_queries.traffic_policies)
    chosen = right.selectbox("Policy", ["all", *policies, PASS_THROUGH], key="traffic_policy")
    live(window, None if chosen == "all" else chosen)


if __name__ == "__main__":
    render()
