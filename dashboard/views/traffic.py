"""Traffic: the proxy's request log — volume, spend and savings, model mix, latency, errors.

The body is a fragment that reruns itself every few seconds, so a running proxy's requests show
up without touching the page (each rerun is a few cached DuckDB aggregations).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, queries, traffic_queries

REFRESH_S = 5
CHART_PX = 260
WINDOWS = {
    "last 15 minutes": timedelta(minutes=15),
    "last hour": timedelta(hours=1),
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
    "all time": None,
}
# Bucket widths to choose from: about 60 bars across the window.
BUCKETS_S = (10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)


def bucket_for(span: timedelta) -> int:
    target = span.total_seconds() / 60
    return next((b for b in BUCKETS_S if b >= target), BUCKETS_S[-1])


def since_for(window: str) -> datetime | None:
    """The window's start, in the log's naive UTC timestamps, rounded to the minute so that
    reruns within a minute share the query cache."""
    length = WINDOWS[window]
    if length is None:
        return None
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    return now - length


def line(frame: pd.DataFrame, columns: list[str], title: str, fmt: str) -> alt.Chart:
    long = frame.melt(id_vars="bucket", value_vars=columns, var_name="series")
    return (
        alt.Chart(long)
        .mark_line(point=len(frame) < 30)
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("value:Q", title=title, axis=alt.Axis(format=fmt)),
            color=alt.Color("series:N", legend=alt.Legend(orient="bottom", title=None)),
            tooltip=["bucket:T", "series:N", alt.Tooltip("value:Q", format=fmt)],
        )
    )


@st.fragment(run_every=REFRESH_S)
def live(window: str, policy: str | None) -> None:
    since = since_for(window)
    totals = data.query(traffic_queries.traffic_totals, since, policy)
    if not totals["requests"]:
        st.info("No requests in this window.")
        return
    spend, base = totals["spend_usd"], totals["baseline_usd"]
    cols = st.columns(6)
    cols[0].metric("Requests", f"{totals['requests']:,}")
    cols[1].metric("Spend", f"${spend:,.4f}")
    cols[2].metric(
        "Saved vs baseline",
        f"${base - spend:,.4f}",
        delta=f"{1 - spend / base:.0%} less" if base else None,
    )
    cols[3].metric("p95 latency", f"{totals['p95_latency_ms'] or 0:,.0f} ms")
    cols[4].metric(
        "Errors",
        f"{totals['errors']:,}",
        delta=f"{totals['errors'] / totals['requests']:.1%}",
        delta_color="inverse",
    )
    cols[5].metric("Fallbacks", f"{totals['fallbacks']:,}")

    span = (totals["last_at"] - totals["first_at"]) if since is None else WINDOWS[window]
    timeline = data.query(
        traffic_queries.traffic_timeline, since, policy, bucket_for(span or timedelta(minutes=1))
    )
    left, right = st.columns(2)
    left.altair_chart(
        alt.Chart(timeline)
        .mark_bar()
        .encode(x=alt.X("bucket:T", title=None), y="requests:Q")
        .properties(title="Requests"),
        width="stretch",
        height=CHART_PX,
    )
    right.altair_chart(
        line(timeline, ["spend_usd", "baseline_usd"], "USD", "$.4f").properties(
            title="Spend vs the baseline's cost"
        ),
        width="stretch",
        height=CHART_PX,
    )
    left.altair_chart(
        line(timeline, ["p95_latency_ms"], "ms", ",.0f").properties(title="p95 latency"),
        width="stretch",
        height=CHART_PX,
    )
    right.altair_chart(
        line(timeline, ["errors", "fallbacks"], "count", "d").properties(
            title="Errors and fallbacks"
        ),
        width="stretch",
        height=CHART_PX,
    )

    mix = data.query(traffic_queries.traffic_model_mix, since, policy)
    st.altair_chart(
        alt.Chart(mix)
        .mark_bar()
        .encode(x="requests:Q", y=alt.Y("model:N", sort="-x"), tooltip=list(mix.columns))
        .properties(title="Model mix"),
        width="stretch",
        height=90 + 30 * len(mix),
    )
    errors = data.query(traffic_queries.traffic_recent_errors, since, policy, 20)
    if not errors.empty:
        st.subheader("Recent errors")
        st.dataframe(errors, hide_index=True, width="stretch")
    st.caption(
        f"Refreshes every {REFRESH_S} s. Baseline cost: what each request would have cost on the baseline model (logged by the proxy)."
    )


@st.fragment(run_every=REFRESH_S)
def wait_for_requests() -> None:
    """Until the proxy logs its first request; then the whole page draws itself."""
    if data.query(queries.overview)["requests"]:
        st.rerun()
    st.info(
        "No requests logged yet. Start the proxy with `tradeoff serve --policy policy.json` "
        "and point an OpenAI client at it; requests appear here as they arrive."
    )


def render() -> None:
    st.title("Traffic")
    if not data.require_store()["requests"]:
        wait_for_requests()
        st.stop()
    left, right = st.columns(2)
    window = left.selectbox("Window", list(WINDOWS), index=2, key="traffic_window")
    policies = data.query(traffic_queries.traffic_policies)
    chosen = right.selectbox("Policy", ["all", *policies], key="traffic_policy")
    live(window, None if chosen == "all" else chosen)


if __name__ == "__main__":
    render()
