"""The charts' specs: fixed colours and shapes per kind, legends for the guides, axes clamped to
the data, labels that do not collide, heatmaps as tall as their rows."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tradeoff.dashboard.charts import GUIDES, KIND_STYLE, PLOT_HEIGHT, heatmap, tradeoff_chart
from tradeoff.dashboard.choice import FAILS, MEETS, ON_AVERAGE, Option

MODELS = [
    Option("small", "model", 0.69, 0.2, 0.60, 0.77),
    Option("medium", "model", 0.87, 2.0, 0.80, 0.93),
    Option("large", "model", 0.91, 18.0, 0.86, 0.96),
]
POLICY = Option("cheap-first", "policy", 0.80, 0.8, 0.70, 0.90)
ORACLE = Option("oracle", "oracle", 0.97, 3.2, 0.95, 0.99)
SWEEP = Option("task_table lambda=1", "sweep", 0.85, 1.1, 0.8, 0.9)
JUDGED = {"small": FAILS, "medium": ON_AVERAGE, "large": MEETS, "cheap-first": ON_AVERAGE}


def spec(options: list[Option], **kwargs: Any) -> dict[str, Any]:
    args = {"judged": JUDGED, "min_accuracy": 0.82, "recommended": "large", "baseline": "large"}
    return tradeoff_chart(options, options, **(args | kwargs)).to_dict()


def encodings(chart: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    return [
        layer["encoding"][channel]
        for layer in chart["layer"]
        if channel in layer.get("encoding", {})
    ]


def test_each_kind_keeps_its_colour_and_shape_whatever_is_shown() -> None:
    without = spec([*MODELS, POLICY])
    with_sweeps = spec([*MODELS, POLICY, SWEEP, ORACLE])
    for chart in (without, with_sweeps):
        colors = encodings(chart, "color")
        scales = {str(c["scale"]) for c in colors}
        assert len(scales) == 1  # one colour scale, domain fixed
        scale = colors[0]["scale"]
        for kind, (label, color, _shape) in KIND_STYLE.items():
            assert scale["range"][scale["domain"].index(label)] == color, kind
    assert encodings(without, "color")[0]["scale"] == encodings(with_sweeps, "color")[0]["scale"]
    # Red is the required accuracy's alone.
    red = GUIDES["required accuracy"]
    assert [c for c in encodings(without, "color")[0]["scale"]["range"] if c == red] == [red]
    assert red not in [style[1] for style in KIND_STYLE.values()]


def test_the_legend_names_the_guides_present() -> None:
    chart = spec([*MODELS, POLICY])
    legend = encodings(chart, "color")[0]["legend"]
    assert legend["values"] == [
        "single model", "fitted policy", "required accuracy", "Pareto frontier", "recommended",
    ]  # fmt: skip
    bare = spec(MODELS, min_accuracy=None, recommended=None)
    assert encodings(bare, "color")[0]["legend"]["values"] == ["single model", "Pareto frontier"]


def test_the_axes_end_where_the_data_does() -> None:
    chart = spec([*MODELS, POLICY])
    x = encodings(chart, "x")[0]
    assert x["scale"]["type"] == "log" and x["axis"]["format"].startswith("$")
    low, high = x["scale"]["domain"]
    assert 0.2 / 1.5 < low < 0.2 and 18 < high < 18 * 1.5  # not a rounded-up $100
    y = next(e for e in encodings(chart, "y") if "scale" in e)
    assert y["axis"]["format"] == ".0%"
    bottom, top = y["scale"]["domain"]
    assert 0.55 < bottom < 0.60 and 0.96 < top <= 1.0
    narrow = [Option("a", "model", 0.5, 0.05, 0.4, 0.6), Option("b", "model", 0.6, 0.18, 0.5, 0.7)]
    x = encodings(spec(narrow, judged={}, recommended=None), "x")[0]
    assert x["scale"].get("type") != "log" and x["scale"]["domain"][1] < 0.2


def test_labels_are_drawn_only_where_they_fit() -> None:
    crowd = [Option(f"model-{k:02d}", "model", 0.5 + k * 0.001, 1.0 + k * 0.01) for k in range(12)]
    crowd += [Option("cheapest", "model", 0.2, 0.01), Option("best", "model", 0.95, 50.0)]
    chart = spec(crowd, judged={}, recommended=None, baseline=None, min_accuracy=None)
    texts = [layer for layer in chart["layer"] if layer["mark"]["type"] == "text"]
    labelled = [r["name"] for layer in texts for r in _data(chart, layer)]
    assert {"cheapest", "best"} <= set(labelled)  # the lone points keep theirs
    assert 0 < len(labelled) < len(crowd)


def _data(chart: dict[str, Any], layer: dict[str, Any]) -> list[dict[str, Any]]:
    return chart["datasets"][layer["data"]["name"]]


def test_a_heatmap_gives_each_row_its_height_and_runs_the_longer_side_down() -> None:
    frame = pd.DataFrame(
        [
            {"model": m, "task": f"task-{t:02d}", "accuracy": 0.5, "n_items": 3}
            for m in ("alpha", "beta")
            for t in range(36)
        ]
    )
    chart = heatmap(frame, "accuracy", "accuracy", ".0%", "greens").to_dict()
    assert chart["height"] == {"step": 24}
    layer = chart["layer"][0]["encoding"]
    assert layer["y"]["field"] == "task" and layer["x"]["field"] == "model"
    wide = frame.rename(columns={"model": "task", "task": "model"})
    assert (
        heatmap(wide, "accuracy", "a", ".0%", "greens").to_dict()["layer"][0]["encoding"]["y"][
            "field"
        ]
        == "model"
    )


@pytest.mark.parametrize("height", [PLOT_HEIGHT])
def test_the_scatter_asks_for_its_plot_height(height: int) -> None:
    assert spec(MODELS)["height"] == height
