"""Charts over time: the x axis spans the whole window in UTC (and says so), buckets without
requests are drawn as zero (the query fills them, `traffic_queries.traffic_timeline`), and each
series keeps one colour wherever it appears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd

__all__ = ["SERIES", "WINDOWS", "bars", "bucket_for", "lines", "now_utc", "time_axis", "time_scale"]

CHART_PX = 220
# series label -> colour, the same on every chart and page.
SERIES = {
    "routed by a policy": "#4c78a8",
    "pass-through": "#bab0ac",
    "spend": "#4c78a8",
    "the baseline's cost": "#f58518",
    "p95 latency": "#54a24b",
    "client errors (4xx)": "#eeca3b",
    "upstream failures (5xx)": "#b2182b",
    "fallbacks": "#9d755d",
    "shadow spend (cumulative)": "#b279a2",
}


# The windows the traffic pages offer.
WINDOWS = {
    "last 15 minutes": timedelta(minutes=15),
    "last hour": timedelta(hours=1),
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
    "all time": None,
}
# Bucket widths to choose from: about 60 buckets across a window.
BUCKETS_S = (10, 30, 60, 300, 900, 1800, 3600, 6 * 3600, 86400)


def bucket_for(span: timedelta) -> int:
    target = span.total_seconds() / 60
    return next((b for b in BUCKETS_S if b >= target), BUCKETS_S[-1])


def now_utc() -> datetime:
    """Now in the log's naive UTC, rounded down to the minute (reruns within a minute share
    the query cache)."""
    return datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def time_scale(start: datetime, end: datetime) -> alt.Scale:
    """A UTC time scale from `start` to `end` (naive UTC)."""
    return alt.Scale(type="utc", domain=[_iso(start), _iso(end)])


def time_axis(start: datetime, end: datetime, field: str = "bucket") -> alt.X:
    """A UTC time axis from `start` to `end` (naive UTC), labelled for the span."""
    span = end - start
    fmt = (
        "%H:%M"
        if span <= timedelta(days=1)
        else "%b %d %H:%M"
        if span <= timedelta(days=8)
        else "%b %d"
    )
    return alt.X(
        f"{field}:T",
        title="time (UTC)",
        scale=time_scale(start, end),
        axis=alt.Axis(format=fmt, labelOverlap=True),
    )


def _colors(names: list[str]) -> alt.Scale:
    return alt.Scale(domain=names, range=[SERIES[n] for n in names])


def _long(frame: pd.DataFrame, columns: dict[str, str], field: str) -> pd.DataFrame:
    long = frame[[field, *columns]].melt(id_vars=field, var_name="column", value_name="value")
    long["series"] = long["column"].map(columns)
    return long


def bars(
    frame: pd.DataFrame, columns: dict[str, str], x: alt.X, title: str, *, field: str = "bucket"
) -> alt.Chart:
    """Stacked bars of counts per bucket; `columns` maps a column to its series label."""
    names = list(columns.values())
    return (
        alt.Chart(_long(frame, columns, field))
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("value:Q", title=title, stack=True),
            color=alt.Color(
                "series:N",
                scale=_colors(names),
                legend=alt.Legend(orient="bottom", title=None, labelLimit=320),
            ),
            order=alt.Order("column:N"),
            tooltip=[
                alt.Tooltip(f"{field}:T", title="bucket start (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("series:N"),
                alt.Tooltip("value:Q", format=","),
            ],
        )
        .properties(height=CHART_PX)
    )


def lines(
    frame: pd.DataFrame,
    columns: dict[str, str],
    x: alt.X,
    title: str,
    fmt: str,
    *,
    field: str = "bucket",
    zero: bool = True,
) -> alt.Chart:
    """One line per series; the y axis from zero (or the data) to the data's maximum."""
    names = list(columns.values())
    long = _long(frame, columns, field)
    top = long["value"].max()
    domain = [
        0.0 if zero else float(long["value"].min()),
        float(top) * 1.05 if pd.notna(top) and top > 0 else 1.0,
    ]
    return (
        alt.Chart(long)
        .mark_line(point=len(frame) <= 40, interpolate="linear")
        .encode(
            x=x,
            y=alt.Y(
                "value:Q",
                title=title,
                axis=alt.Axis(format=fmt),
                scale=alt.Scale(domain=domain, nice=False),
            ),
            color=alt.Color(
                "series:N",
                scale=_colors(names),
                legend=alt.Legend(orient="bottom", title=None, labelLimit=320),
            ),
            tooltip=[
                alt.Tooltip(f"{field}:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("series:N"),
                alt.Tooltip("value:Q", format=fmt),
            ],
        )
        .properties(height=CHART_PX)
    )
