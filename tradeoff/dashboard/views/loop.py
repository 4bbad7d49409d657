"""Loop: each served policy's promise against what live traffic shows — kept accuracy and
savings over time, shadow spend, its state, and its versions with what each promotion changed;
for a policy `tradeoff explore` started, its candidates: open, proven or dropped (and why).

The figures are the loop's own (`policies.loop.loop_status`, `kept_over_time`, the same JSON
`tradeoff status` prints); this page draws them over time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from tradeoff.dashboard import data, loop_queries, traffic_queries
from tradeoff.dashboard.charts import show
from tradeoff.dashboard.promotions import history_table
from tradeoff.dashboard.tables import pct, pct_range, usd
from tradeoff.dashboard.timecharts import (
    CHART_PX,
    bucket_for,
    lines,
    now_utc,
    time_axis,
    time_scale,
)
from tradeoff.policies.loop.status import kept_over_time, loop_status

STATE_ICON = {
    "ok": ":material/check_circle:",
    "violated": ":material/error:",
    "collecting": ":material/hourglass_top:",
}
PROMISE = "#2ca02c"
LIVE = "#4c78a8"
REQUIRED = "#d62728"


def summary_table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for e in entries:
        promised = e.get("promised") or {}
        ci = e.get("kept_accuracy_ci") or [None, None]
        rows.append(
            {
                "Policy": e["name"],
                "Version": e.get("version"),
                "State": e["state"],
                "Live share of baseline's accuracy": pct(e.get("kept_accuracy")),
                "Live 95% bounds": ""
                if ci[0] is None
                else (f"≥ {ci[0]:.1%}" + ("" if ci[1] is None else f", ≤ {ci[1]:.1%}")),
                "Promised share": pct(promised.get("kept_accuracy")),
                "Promised 95% CI": pct_range(*(promised.get("kept_accuracy_ci") or [None, None])),
                "Required": pct(e.get("required_share"), 0),
                "Live savings": pct(e.get("savings")),
                "Promised savings": pct(promised.get("savings")),
                "Requests": e.get("requests"),
                "Shadow pairs": e.get("shadow_pairs"),
                "Shadow spend (USD)": usd(e.get("shadow_spend_usd")),
            }
        )
    return pd.DataFrame(rows)


def explore_table(explore: dict[str, Any]) -> pd.DataFrame:
    """One row per explored candidate: what the race and the traffic say of it."""
    rows = []
    for c in explore["candidates"]:
        dropped = c["state"] == "dropped"
        rows.append(
            {
                "Candidate": c["model"],
                "State": "proven" if c.get("proven") else c["state"],
                "Requests measured": c["requests"],
                "Share of baseline's accuracy": pct(c.get("kept_accuracy")),
                "95% lower bound": pct(c.get("kept_accuracy_lower")),
                "Savings": pct(c.get("savings")),
                "Savings 95% CI": pct_range(*(c.get("savings_ci") or [None, None])),
                "Shadow spend (USD)": usd(c.get("shadow_spend_usd")),
                "Why dropped": f"after {c['dropped_after']} requests: {c['reason']}"
                if dropped
                else "",
            }
        )
    return pd.DataFrame(rows)


def explore_section(entry: dict[str, Any]) -> None:
    explore = entry.get("explore")
    if not explore:
        return
    st.subheader(f"Exploring candidates against {explore['baseline']}")
    proven = any(c.get("proven") for c in explore["candidates"])
    (st.success if proven else st.info)(explore["summary"])
    st.dataframe(explore_table(explore), hide_index=True, width="stretch")
    st.caption(
        "Each sampled request is also asked of the open candidates, after the client has its "
        "answer; a candidate is dropped once it is, with 95% confidence, of no use for the "
        "requirement. Bounds are anytime-valid (split over the open candidates), on the "
        f"requests both it and {explore['baseline']} answered."
    )


def kept_chart(name: str, entry: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """The monitor's kept accuracy (and its anytime-valid bounds) over every epoch, the
    required share and the serving version's promised interval."""
    required = entry.get("required_share")
    series = []
    for event in events:
        if event["event"] != "promoted":
            continue
        for point in data.library(kept_over_time, name, event["seq"], required):
            series.append({**point, "version": f"v{event['version']}"})
    if not series:
        st.info("No graded shadow pairs yet: serve with `--shadow RATE` to check the promise live.")
        return
    frame = pd.DataFrame(series)
    start = min(frame["graded_at"].min(), min(e["happened_at"] for e in events))
    end = max(frame["graded_at"].max(), now_utc())
    x = time_axis(start, end, "graded_at")
    x_scale = time_scale(start, end)
    values = pd.concat([frame["kept_accuracy"], frame["lower"].dropna(), frame["upper"].dropna()])
    promised = entry.get("promised") or {}
    band = promised.get("kept_accuracy_ci") or [None, None]
    extra = [v for v in (required, *band) if v is not None]
    lo, hi = float(min([*values, *extra])), float(max([*values, *extra]))
    y_scale = alt.Scale(domain=[max(lo - 0.02, 0), hi + 0.02], nice=False)
    y = alt.Y(
        "kept_accuracy:Q",
        title="share of the baseline's accuracy",
        axis=alt.Axis(format=".0%"),
        scale=y_scale,
    )
    layers: list[Any] = []
    serving_since = max(
        (e["happened_at"] for e in events if e["event"] == "promoted"), default=start
    )
    if band[0] is not None:
        promise = pd.DataFrame(
            {
                "lo": [band[0]],
                "hi": [band[1]],
                "what": [f"promised (v{entry.get('version')}, 95% CI)"],
                "from": [serving_since],
                "to": [end],
            }
        )
        layers.append(
            alt.Chart(promise)
            .mark_rect(opacity=0.15, color=PROMISE)
            .encode(
                x=alt.X("from:T", scale=x_scale),
                x2="to:T",
                y=alt.Y("lo:Q", scale=y_scale),
                y2="hi:Q",
                tooltip=[
                    alt.Tooltip("what:N"),
                    alt.Tooltip("lo:Q", format=".1%"),
                    alt.Tooltip("hi:Q", format=".1%"),
                ],
            )
        )
    bounds = frame.dropna(subset=["lower"]).assign(upper=lambda f: f["upper"].fillna(hi + 0.02))
    layers.append(
        alt.Chart(bounds)
        .mark_area(opacity=0.2, color=LIVE)
        .encode(x=x, y=alt.Y("lower:Q", scale=y_scale), y2="upper:Q", detail="version:N")
    )
    layers.append(
        alt.Chart(frame)
        .mark_line(point=True, color=LIVE)
        .encode(
            x=x,
            y=y,
            detail="version:N",
            tooltip=[
                alt.Tooltip("graded_at:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("version:N"),
                alt.Tooltip("pairs:Q", title="pairs in epoch"),
                alt.Tooltip("state:N"),
                alt.Tooltip("kept_accuracy:Q", format=".1%", title="live"),
                alt.Tooltip("lower:Q", format=".1%", title="95% lower bound"),
                alt.Tooltip("upper:Q", format=".1%", title="95% upper bound"),
            ],
        )
    )
    if required is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"r": [required]}))
            .mark_rule(color=REQUIRED, strokeDash=[4, 3])
            .encode(y=alt.Y("r:Q", scale=y_scale))
        )
    promotions = pd.DataFrame(
        [
            {"at": e["happened_at"], "label": f"v{e['version']} promoted"}
            for e in events
            if e["event"] == "promoted"
        ]
    )
    layers.append(
        alt.Chart(promotions)
        .mark_rule(color="#777", strokeDash=[2, 2])
        .encode(x=alt.X("at:T", scale=x_scale), tooltip=["label:N"])
    )
    layers.append(
        alt.Chart(promotions)
        .mark_text(align="left", dx=3, dy=-4, fontSize=10, color="#555")
        .encode(x=alt.X("at:T", scale=x_scale), y=alt.value(10), text="label:N")
    )
    show(
        st,
        alt.LayerChart(layer=layers).properties(
            title="Kept accuracy, live vs promised", height=CHART_PX + 60
        ),
    )
    st.caption(
        "Blue: the live share of the baseline's accuracy on graded shadow pairs, and its "
        "anytime-valid 95% bounds (each version counts from its promotion). Green band: what "
        "the serving version promised on held-out items. Red dashed: the required share."
    )


def savings_chart(name: str, entry: dict[str, Any], since: Any) -> None:
    end = now_utc() + timedelta(minutes=1)
    start = since if since is not None else end - timedelta(days=1)
    bucket_s = bucket_for(end - start)
    timeline = data.query(traffic_queries.traffic_timeline, start, name, bucket_s, end)
    if timeline.empty or not timeline["with_baseline"].any():
        st.info(f"No requests of {name} with a baseline price yet: no live savings to draw.")
        return
    timeline["live savings"] = 1 - timeline["routed_usd"] / timeline["baseline_usd"].where(
        timeline["baseline_usd"] > 0
    )
    promised = (entry.get("promised") or {}).get("savings")
    x = time_axis(start, end)
    chart = (
        alt.Chart(timeline.dropna(subset=["live savings"]))
        .mark_line(point=True, color=LIVE)
        .encode(
            x=x,
            y=alt.Y("live savings:Q", title="savings vs the baseline", axis=alt.Axis(format=".0%")),
            tooltip=[
                alt.Tooltip("bucket:T", title="bucket start (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("live savings:Q", format=".1%"),
                alt.Tooltip("with_baseline:Q", title="requests with a baseline"),
            ],
        )
    )
    layers: list[Any] = [chart]
    if promised is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"p": [promised]}))
            .mark_rule(color=PROMISE, strokeDash=[6, 3])
            .encode(y="p:Q", tooltip=[alt.Tooltip("p:Q", format=".1%", title="promised savings")])
        )
    show(
        st,
        alt.LayerChart(layer=layers).properties(
            title="Savings per bucket, live vs promised (green dashed)", height=CHART_PX
        ),
    )


def shadow_chart(name: str) -> None:
    pairs = data.query(loop_queries.shadow_spend, name)
    if pairs.empty:
        return
    pairs = pairs.assign(cumulative=pairs["shadow_usd"].cumsum())
    x = time_axis(pairs["graded_at"].min(), max(pairs["graded_at"].max(), now_utc()), "graded_at")
    show(
        st,
        lines(
            pairs, {"cumulative": "shadow spend (cumulative)"}, x, "USD", "$.3~g", field="graded_at"
        ).properties(title="Shadow spend"),
    )


def _since(text: str | None) -> str:
    if not text:
        return "it was first served"
    return text.replace("T", " ")[:16] + " UTC"


def render() -> None:
    st.title("Loop")
    data.require_store()
    entries = data.library(loop_status)["policies"]
    if not entries:
        st.info(
            "No policy is serving yet. Fit one (`tradeoff fit`, or the Fit button on the "
            "Tradeoffs page), or start from the model your app calls today (`tradeoff explore "
            "NAME --baseline MODEL --candidates A,B --require ...`), then serve it by name with "
            "`tradeoff serve --policy NAME --shadow 0.05`: this page then follows it on live "
            "traffic."
        )
        st.stop()
    st.dataframe(summary_table(entries), hide_index=True, width="stretch")
    # The busiest policy first: the one with the most evidence to look at.
    ranked = sorted(
        entries, key=lambda e: (-(e.get("shadow_pairs") or 0), -(e.get("requests") or 0))
    )
    names = [e["name"] for e in ranked]
    name = st.selectbox("Policy", names, key="loop_policy")
    entry = next(e for e in entries if e["name"] == name)
    icon = STATE_ICON.get(entry["state"], ":material/help:")
    st.markdown(
        f"{icon} **{name}** version {entry.get('version')}: **{entry['state']}**, requirement "
        f"`{entry.get('requirement')}` against `{entry.get('baseline')}`; "
        f"{entry.get('requests', 0):,} requests and {entry.get('shadow_pairs', 0):,} graded "
        f"pairs since {_since(entry.get('since'))}."
    )
    explore_section(entry)
    events = data.query(loop_queries.events, name)
    kept_chart(name, entry, events)
    left, right = st.columns(2)
    with left:
        first = min((e["happened_at"] for e in events), default=None)
        savings_chart(name, entry, first)
    with right:
        shadow_chart(name)
    st.subheader("Versions and what each promotion changed")
    versions = data.query(loop_queries.versions, name)
    table = history_table(versions, events)
    for row in table.to_dict("records"):
        st.markdown(
            f"- **v{row['Version']} {row['Event']}** · {row['When (UTC)']:%Y-%m-%d %H:%M} UTC — "
            f"{row['Why']}  \n  {row['What changed (vs the version serving before)']}"
        )


if __name__ == "__main__":
    render()
