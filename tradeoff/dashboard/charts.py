"""Altair charts the pages share: the tradeoff scatter and the heatmaps.

Read at a glance: every kind of point keeps one colour and one shape whatever else is shown
(the scales' domains are fixed, so a toggle never remaps them); red is the requirement's alone;
the requirement, the frontier and the recommendation have a legend; labels are drawn only where
they collide with nothing (`dashboard.labels`); the `$` and `%` axes span the data, not a
rounded-up range; every figure's interval is in its tooltip.
"""

from __future__ import annotations

from typing import Any, cast

import altair as alt
import pandas as pd

from tradeoff.dashboard import labels
from tradeoff.dashboard.choice import FAILS, MEETS, ON_AVERAGE, Option

__all__ = [
    "GUIDES",
    "KIND_STYLE",
    "PLOT_HEIGHT",
    "VERDICT_KEY",
    "heatmap",
    "show",
    "tradeoff_chart",
]

PLOT_HEIGHT = 400
RING_PX = 13  # the recommendation ring's radius
# A ring as an SVG path (outer and inner circles drawn in opposite directions: a hole), so the
# recommendation's legend symbol is the ring the chart draws.
RING = "M-1,0A1,1 0 1,0 1,0A1,1 0 1,0 -1,0ZM-0.78,0A0.78,0.78 0 1,1 0.78,0A0.78,0.78 0 1,1 -0.78,0Z"
# The narrowest plot the page gives the chart (see dashboard/labels.py): labels are placed at it.
MIN_PLOT_WIDTH = 600
# kind -> (legend label, colour, shape). Red is kept for the requirement.
KIND_STYLE = {
    "model": ("single model", "#4c78a8", "circle"),
    "policy": ("fitted policy", "#2ca02c", "diamond"),
    "sweep": ("frontier sweep (reference)", "#9467bd", "square"),
    "oracle": ("oracle (bound)", "#7f7f7f", "triangle-up"),
}
REFERENCE = "reference (never recommended)"
VERDICT_KEY = (
    "● filled: meets the requirement at its lower bound · ○ hollow: meets it on average only "
    "· faded: does not meet it · half-filled: a reference, never recommended"
)
# verdict -> (fill opacity, opacity): filled meets, hollow meets on average only, faded does
# not meet; references (sweeps, the oracle) half filled.
VERDICT_STYLE = {
    MEETS: (1.0, 1.0),
    ON_AVERAGE: (0.0, 1.0),
    FAILS: (1.0, 0.3),
    REFERENCE: (0.45, 1.0),
}
GUIDES = {
    "required accuracy": "#d62728",
    "Pareto frontier": "#555555",
    "recommended": "#111111",
}


def _frame(options: list[Option], judged: dict[str, str]) -> pd.DataFrame:
    rows = []
    for o in options:
        label, _, _ = KIND_STYLE[o.kind]
        rows.append(
            {
                "name": o.name,
                "kind": label,
                "verdict": judged.get(o.name, REFERENCE) if o.deployable else REFERENCE,
                "accuracy": o.accuracy,
                "accuracy_lo": o.accuracy_lo,
                "accuracy_hi": o.accuracy_hi,
                "cost_per_1k": o.cost_per_1k,
                "kept": o.kept,
                "kept_lo": o.kept_lo,
                "kept_hi": o.kept_hi,
                "bound": o.bound,
                "bound_from": o.bound_from or "no bound: point estimate only",
                "accepted_for": o.accepted_for or "",
                "reliability": o.reliability,
                "p95_latency_ms": o.p95_latency_ms,
                "n": o.n,
            }
        )
    return pd.DataFrame(rows)


def _x_scale(costs: pd.Series) -> tuple[alt.Scale, labels.Scale]:
    """Log when every cost is positive and they span a decade, else linear from zero; the domain
    ends where the data does (a little margin so no point sits on the frame)."""
    lo, hi = float(costs.min()), float(costs.max())
    if lo > 0 and hi / lo >= 10:
        domain = [lo / 1.3, hi * 1.3]
        return alt.Scale(type="log", domain=domain, nice=False), labels.Scale(
            domain[0], domain[1], MIN_PLOT_WIDTH, log=True
        )
    top = hi * 1.08 if hi > 0 else 1.0
    pad = (hi - lo) * 0.08 if hi > lo else max(hi * 0.08, 1e-6)
    bottom = max(lo - pad, 0.0)
    return alt.Scale(domain=[bottom, top], nice=False, zero=False), labels.Scale(
        bottom, top, MIN_PLOT_WIDTH
    )


def _y_domain(points: pd.DataFrame, min_accuracy: float | None) -> list[float]:
    values = pd.concat([points["accuracy"], points["accuracy_lo"], points["accuracy_hi"]])
    if min_accuracy is not None:
        values = pd.concat([values, pd.Series([min_accuracy])])
    lo, hi = float(values.min()), float(values.max())
    pad = max((hi - lo) * 0.06, 0.005)
    return [max(lo - pad, 0.0), min(hi + pad, 1.0)]


def _label_sides(
    points: pd.DataFrame,
    x_px: labels.Scale,
    y_domain: list[float],
    priority: list[str],
    recommended: str | None,
) -> dict[str, str]:
    y_px = labels.Scale(y_domain[0], y_domain[1], PLOT_HEIGHT)
    rank = {name: k for k, name in enumerate(priority)}
    ordered = sorted(points.to_dict("records"), key=lambda r: rank.get(r["name"], len(rank)))
    return labels.place(
        [
            labels.Point(
                str(r["name"]),
                x_px(r["cost_per_1k"]),
                PLOT_HEIGHT - y_px(r["accuracy"]),
                RING_PX if r["name"] == recommended else labels.POINT_PX,
            )
            for r in ordered
        ],
        MIN_PLOT_WIDTH,
        PLOT_HEIGHT,
    )


def _text_at(side: str, offset: float) -> tuple[Any, float, float]:
    """(align, dx, dy) of a label's text mark `offset` px from its point's centre on `side`
    (a text mark's y is its middle line: half a line more above and below)."""
    half = labels.LINE_PX / 2
    return {
        "right": ("left", offset, 0.0),
        "left": ("right", -offset, 0.0),
        "above": ("center", 0.0, -offset - half),
        "below": ("center", 0.0, offset + half),
    }[side]


def tradeoff_chart(
    options: list[Option],
    frontier: list[Option],
    *,
    judged: dict[str, str],
    min_accuracy: float | None,
    recommended: str | None,
    baseline: str | None = None,
) -> alt.LayerChart:
    """Cost per 1k requests (x) vs accuracy (y): points by kind, filled by verdict, with their
    95% intervals, the Pareto frontier, the required accuracy and the recommendation."""
    points = _frame(options, judged)
    x_scale, x_px = _x_scale(points["cost_per_1k"])
    y_domain = _y_domain(points, min_accuracy)
    x = alt.X(
        "cost_per_1k:Q", title="cost per 1k requests", scale=x_scale, axis=alt.Axis(format="$.2~g")
    )
    y = alt.Y(
        "accuracy:Q",
        title="accuracy",
        scale=alt.Scale(domain=y_domain, nice=False),
        axis=alt.Axis(format=".0%"),
    )
    # One legend for what each mark is: the kinds (colour and shape) and the guides (lines and
    # the recommendation ring), all on the field `kind`, with fixed domains.
    legend_domain = [s[0] for s in KIND_STYLE.values()] + list(GUIDES)
    present = set(points["kind"]) | {
        g for g, on in _guides_on(frontier, min_accuracy, recommended).items() if on
    }
    legend = alt.Legend(
        symbolOpacity=1,
        title=None,
        orient="right",
        values=[k for k in legend_domain if k in present],
        symbolStrokeWidth=2,
    )
    colors = alt.Scale(
        domain=legend_domain, range=[s[1] for s in KIND_STYLE.values()] + list(GUIDES.values())
    )
    shapes = alt.Scale(
        domain=legend_domain,
        range=[s[2] for s in KIND_STYLE.values()] + ["stroke", "stroke", RING],
    )
    color = alt.Color("kind:N", scale=colors, legend=legend)
    shape = alt.Shape("kind:N", scale=shapes, legend=legend)
    # Vega's legends cannot draw a hollow symbol, so the fill states are explained beside the
    # chart (`VERDICT_KEY`) rather than in a legend that would show them wrong.
    # Ordinal scales map each verdict to its own value (a point scale would spread them evenly).
    fill = alt.FillOpacity(
        "verdict:N",
        scale=alt.Scale(
            type="ordinal", domain=list(VERDICT_STYLE), range=[f for f, _ in VERDICT_STYLE.values()]
        ),
        legend=None,
    )
    fade = alt.Opacity(
        "verdict:N",
        scale=alt.Scale(
            type="ordinal", domain=list(VERDICT_STYLE), range=[o for _, o in VERDICT_STYLE.values()]
        ),
        legend=None,
    )
    tooltip = [
        alt.Tooltip("name:N", title="option"),
        alt.Tooltip("kind:N"),
        alt.Tooltip("verdict:N", title="requirement"),
        alt.Tooltip("accuracy:Q", format=".1%"),
        alt.Tooltip("accuracy_lo:Q", format=".1%", title="accuracy 95% CI low"),
        alt.Tooltip("accuracy_hi:Q", format=".1%", title="accuracy 95% CI high"),
        alt.Tooltip("kept:Q", format=".1%", title=f"share of {baseline or 'baseline'}'s accuracy"),
        alt.Tooltip("kept_lo:Q", format=".1%", title="share 95% CI low"),
        alt.Tooltip("kept_hi:Q", format=".1%", title="share 95% CI high"),
        alt.Tooltip("bound:Q", format=".1%", title="lower bound decided on"),
        alt.Tooltip("bound_from:N", title="bound from"),
        alt.Tooltip("accepted_for:N", title="accepted for"),
        alt.Tooltip("cost_per_1k:Q", format="$.4~g", title="cost per 1k requests"),
        alt.Tooltip("reliability:Q", format=".3f"),
        alt.Tooltip("p95_latency_ms:Q", format=",.0f", title="p95 latency (ms)"),
        alt.Tooltip("n:Q", format=",", title="items"),
    ]
    base = alt.Chart(points)
    bars = (
        base.transform_filter("isValid(datum.accuracy_lo) && isValid(datum.accuracy_hi)")
        .mark_rule(strokeWidth=2, opacity=0.45)
        .encode(x=x, y="accuracy_lo:Q", y2="accuracy_hi:Q", color=color)
    )
    dots = base.mark_point(filled=True, size=110, strokeWidth=1.8).encode(
        x=x,
        y=y,
        color=color,
        stroke=color,
        shape=shape,
        fillOpacity=fill,
        opacity=fade,
        tooltip=tooltip,
    )
    layers: list[Any] = [bars, dots]
    if len(frontier) > 1:
        line = pd.DataFrame(
            {
                "cost_per_1k": [o.cost_per_1k for o in frontier],
                "accuracy": [o.accuracy for o in frontier],
                "kind": "Pareto frontier",
            }
        )
        layers.insert(
            0,
            alt.Chart(line)
            .mark_line(strokeDash=[6, 3], strokeWidth=1.5)
            .encode(x=x, y=y, order="cost_per_1k:Q", color=color),
        )
    if min_accuracy is not None:
        rule = pd.DataFrame({"accuracy": [min_accuracy], "kind": ["required accuracy"]})
        layers.append(
            alt.Chart(rule)
            .mark_rule(strokeDash=[4, 3], strokeWidth=1.5)
            .encode(
                y="accuracy:Q",
                color=color,
                tooltip=[alt.Tooltip("accuracy:Q", format=".1%", title="required accuracy")],
            )
        )
    if recommended is not None:
        ring = points[points["name"] == recommended].assign(kind="recommended")
        layers.append(
            alt.Chart(ring)
            .mark_point(size=620, filled=True, opacity=1)
            .encode(x=x, y=y, color=color, shape=shape)
        )
    priority = [recommended or "", baseline or ""]
    priority += [o.name for o in sorted(options, key=lambda o: _label_rank(o))]
    sides = _label_sides(
        points[points["kind"] != KIND_STYLE["sweep"][0]], x_px, y_domain, priority, recommended
    )
    for side in labels.SIDES:
        for is_ring in (False, True):
            chosen = points[
                (points["name"].map(sides) == side) & ((points["name"] == recommended) == is_ring)
            ]
            if chosen.empty:
                continue
            gap = (RING_PX if is_ring else labels.POINT_PX) + labels.GAP_PX - labels.POINT_PX
            align, dx, dy = _text_at(side, gap)
            layers.append(
                alt.Chart(chosen)
                .mark_text(fontSize=11, align=align, dx=dx, dy=dy)
                .encode(x=x, y=y, text="name:N")
            )
    return alt.LayerChart(layer=layers).properties(height=PLOT_HEIGHT)


def _guides_on(
    frontier: list[Option], min_accuracy: float | None, recommended: str | None
) -> dict[str, bool]:
    return {
        "required accuracy": min_accuracy is not None,
        "Pareto frontier": len(frontier) > 1,
        "recommended": recommended is not None,
    }


def _label_rank(option: Option) -> tuple[int, float]:
    """Policies first, then models by accuracy, then the oracle; sweeps are never labelled."""
    order = {"policy": 0, "model": 1, "oracle": 2, "sweep": 3}
    return order[option.kind], -option.accuracy


def heatmap(frame: pd.DataFrame, value: str, title: str, fmt: str, scheme: str) -> alt.LayerChart:
    """Models x tasks, coloured and labelled by `value`. The dimension with more values runs
    down the rows (their names read level), and each row gets `ROW_PX`, so the chart is as tall
    as its rows need, never squeezed to nothing by long column names."""
    by_rows = "task" if frame["task"].nunique() > frame["model"].nunique() else "model"
    by_cols = "model" if by_rows == "task" else "task"
    data = frame.dropna(subset=[value])
    slanted = data[by_cols].nunique() > 8
    base = alt.Chart(data).encode(
        y=alt.Y(f"{by_rows}:N", title=by_rows, axis=alt.Axis(labelLimit=260)),
        x=alt.X(
            f"{by_cols}:N",
            title=by_cols,
            axis=alt.Axis(labelLimit=180, labelAngle=-35 if slanted else 0, orient="top"),
        ),
    )
    # The schemes run light to dark as the value grows: dark cells get white text.
    middle = (float(data[value].min()) + float(data[value].max())) / 2
    cells = base.mark_rect().encode(
        color=alt.Color(
            f"{value}:Q",
            title=title,
            scale=alt.Scale(scheme=cast(Any, scheme)),
            # Below the cells, across: a few rows never clip it.
            legend=alt.Legend(
                format=fmt, orient="bottom", direction="horizontal", gradientLength=240
            ),
        ),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("task:N"),
            alt.Tooltip(f"{value}:Q", format=fmt, title=title),
            alt.Tooltip("n_items:Q", format=",", title="items"),
        ],
    )
    text = base.mark_text(baseline="middle", fontSize=10).encode(
        text=alt.Text(f"{value}:Q", format=fmt),
        color=alt.condition(f"datum['{value}'] > {middle}", alt.value("white"), alt.value("#222")),
    )
    return alt.LayerChart(layer=[cells, text]).properties(height=alt.Step(ROW_PX))


ROW_PX = 24


def show(where: Any, chart: Any) -> None:
    """Draw `chart` across the container's width at its own height: the plot keeps the height
    the chart asks for, and axes, titles and legends are added around it (Streamlit's default
    fits all of them into that height, which squeezes a plot with a legend to a sliver)."""
    where.altair_chart(
        chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding")),
        width="stretch",
    )
