"""Altair charts the pages share: the tradeoff scatter and the model x task heatmap."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

import altair as alt
import pandas as pd

from dashboard.choice import Option

TRADEOFF_HEIGHT = 440
KIND_LABELS = {
    "model": "single model",
    "policy": "fitted policy",
    "sweep": "frontier sweep",
    "oracle": "oracle",
}


def tradeoff_chart(
    options: list[Option],
    frontier: list[Option],
    *,
    min_accuracy: float | None,
    recommended: str | None,
) -> alt.LayerChart:
    """Cost per 1k requests (x) vs accuracy (y), with CI bars, the frontier and the requirement."""
    points = pd.DataFrame([asdict(o) for o in options])
    points["kind"] = points["kind"].map(KIND_LABELS)
    points["recommended"] = points["name"] == recommended
    log_x = bool((points["cost_per_1k"] > 0).all())
    x_scale = alt.Scale(type="log") if log_x else alt.Scale(zero=True)
    x = alt.X("cost_per_1k:Q", title="cost per 1k requests (USD)", scale=x_scale)
    y = alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(zero=False))
    color = alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom"))

    dots = (
        alt.Chart(points)
        .mark_point(filled=True, size=90)
        .encode(
            x=x,
            y=y,
            color=color,
            shape=alt.Shape("kind:N", legend=None),
            tooltip=[
                "name",
                "kind",
                alt.Tooltip("accuracy:Q", format=".3f"),
                alt.Tooltip("accuracy_lo:Q", format=".3f", title="95% CI low"),
                alt.Tooltip("accuracy_hi:Q", format=".3f", title="95% CI high"),
                alt.Tooltip("cost_per_1k:Q", format=".4f"),
                alt.Tooltip("reliability:Q", format=".3f"),
                alt.Tooltip("p95_latency_ms:Q", format=".0f"),
            ],
        )
    )
    labels = dots.mark_text(align="left", dx=8, dy=-8).encode(text="name:N")
    bars = (
        alt.Chart(points.dropna(subset=["accuracy_lo", "accuracy_hi"]))
        .mark_rule(strokeWidth=2, opacity=0.6)
        .encode(x=x, y="accuracy_lo:Q", y2="accuracy_hi:Q", color=color)
    )
    layers: list[alt.Chart] = [bars, dots, labels]
    if len(frontier) > 1:
        line = pd.DataFrame([asdict(o) for o in frontier])
        layers.insert(
            0,
            alt.Chart(line)
            .mark_line(strokeDash=[6, 3], color="gray")
            .encode(x=x, y=y, order="cost_per_1k:Q"),
        )
    if min_accuracy is not None:
        rule = pd.DataFrame({"accuracy": [min_accuracy], "label": ["required accuracy"]})
        layers.append(
            alt.Chart(rule).mark_rule(color="firebrick", strokeDash=[2, 2]).encode(y="accuracy:Q")
        )
    if recommended is not None:
        layers.append(
            alt.Chart(points[points["recommended"]])
            .mark_point(size=400, color="firebrick", strokeWidth=2)
            .encode(x=x, y=y)
        )
    return alt.LayerChart(layer=layers, height=TRADEOFF_HEIGHT)


def heatmap(frame: pd.DataFrame, value: str, title: str, fmt: str, scheme: str) -> alt.LayerChart:
    """Models (rows) x tasks (columns), colored and labeled by `value`."""
    base = alt.Chart(frame).encode(
        x=alt.X("task:N", title="task", axis=alt.Axis(labelLimit=160)),
        y=alt.Y("model:N", title="model", axis=alt.Axis(labelLimit=260)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=title, scale=alt.Scale(scheme=cast(Any, scheme))),
        tooltip=["model", "task", alt.Tooltip(f"{value}:Q", format=fmt), "n_items"],
    )
    text = base.mark_text(baseline="middle").encode(text=alt.Text(f"{value}:Q", format=fmt))
    return alt.LayerChart(layer=[cells, text], height=heatmap_height(frame))


def heatmap_height(frame: pd.DataFrame) -> int:
    """Pixels for one readable row per model, plus room for slanted task names."""
    return 32 * int(frame["model"].nunique()) + 140
