"""Tradeoffs (the landing page): every model and fitted policy on cost vs accuracy, and the
requirement as controls that pick the best feasible option."""

from __future__ import annotations

import streamlit as st

from dashboard import data, fitting, queries
from dashboard.charts import tradeoff_chart
from dashboard.choice import (
    Option,
    Requirement,
    best_feasible,
    options_from_frame,
    pareto_frontier,
    savings_sentence,
)


def requirement_controls(model_names: list[str], default_baseline: str) -> Requirement:
    """The requirement, stated with widgets; defaults: 90% of the baseline's accuracy."""
    left, middle, right = st.columns(3)
    baseline = data.choose_baseline(
        model_names, default_baseline, key="_baseline_tradeoffs", where=left
    )
    share = middle.slider(
        "Accuracy ≥ % of the baseline's", min_value=50, max_value=100, value=90, key="acc_share"
    )
    with right:
        use_reliability = st.checkbox("Reliability ≥ % of the baseline's", key="use_rel")
        reliability = st.slider(
            "Reliability share",
            50,
            120,
            100,
            key="rel_share",
            disabled=not use_reliability,
            label_visibility="collapsed",
        )
        use_latency = st.checkbox("p95 latency cap (seconds)", key="use_lat")
        latency = st.number_input(
            "p95 latency cap",
            min_value=0.1,
            value=2.0,
            step=0.1,
            key="lat_cap",
            disabled=not use_latency,
            label_visibility="collapsed",
        )
    return Requirement(
        baseline=baseline,
        min_accuracy_share=share / 100,
        min_reliability_share=reliability / 100 if use_reliability else None,
        max_p95_latency_s=float(latency) if use_latency else None,
    )


def show_recommendation(best: Option | None, baseline: Option, requirement: Requirement) -> None:
    with st.container(key="recommendation", border=True):
        st.caption(f"Requirement: `{requirement.statement()}` (baseline: {baseline.name})")
        if best is None:
            st.warning(
                "No model or fitted policy meets this requirement on this split. Relax it, or "
                "fit a policy for it below."
            )
            return
        kind = "fitted policy" if best.kind == "policy" else "single model"
        st.markdown(f"**Recommended: {best.name}** ({kind})")
        st.markdown(f"{best.name} {savings_sentence(best, baseline)}.")


def render() -> None:
    st.title("Tradeoffs")
    _, datasets = data.require_outcomes()
    dataset = data.choose_dataset(datasets)
    split = data.choose_split(dataset)

    stats = data.query(queries.model_stats, dataset, split, by_task=False)
    models = options_from_frame(stats, "model", "model")
    policies = options_from_frame(data.query(queries.fitted_policies, dataset), "policy", "name")
    oracle = data.query(queries.oracle, dataset, split)
    if not models:
        st.info(f"No outcomes on the {split or 'whole'} split of {dataset}; pick another split.")
        st.stop()

    most_accurate = max(models, key=lambda o: o.accuracy).name
    requirement = requirement_controls([o.name for o in models], most_accurate)
    baseline = next(o for o in models if o.name == requirement.baseline)
    candidates = models + policies
    best = best_feasible(candidates, requirement)
    show_recommendation(best, baseline, requirement)

    points = list(candidates)
    if oracle is not None:
        points.append(Option("oracle", "oracle", **oracle_fields(oracle)))
    st.altair_chart(
        tradeoff_chart(
            points,
            pareto_frontier(candidates),
            min_accuracy=requirement.min_accuracy_share * baseline.accuracy,
            recommended=best.name if best else None,
        ),
        width="stretch",
    )
    where = f"the {split} split" if split else "every item"
    st.caption(
        f"Single models and the oracle on {where} of {dataset}; fitted policies on their own "
        "held-out split (from `tradeoff fit`). Bars: 95% confidence intervals. Dashed line: "
        "the Pareto frontier of models and policies. The oracle routes each item to the "
        "cheapest model that got it right: a bound, not an option."
    )
    table = stats[["model", "accuracy", "accuracy_lo", "accuracy_hi", "cost_per_1k"]].copy()
    table["reliability"] = stats["reliability"]
    table["p95_latency_ms"] = stats["p95_latency_ms"]
    st.dataframe(table, hide_index=True, width="stretch")

    fitting.fit_section(dataset, requirement)


def oracle_fields(oracle: dict[str, float]) -> dict[str, float]:
    return {
        "accuracy": oracle["accuracy"],
        "cost_per_1k": oracle["cost_per_1k"],
        "accuracy_lo": oracle["accuracy_lo"],
        "accuracy_hi": oracle["accuracy_hi"],
    }


if __name__ == "__main__":
    render()
