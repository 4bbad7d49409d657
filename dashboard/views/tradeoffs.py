"""Tradeoffs (the landing page): every model and fitted policy on cost vs accuracy, and the
requirement as controls that pick the best feasible option."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, fitting, queries, replay
from dashboard.charts import TRADEOFF_HEIGHT, tradeoff_chart
from dashboard.choice import (
    Evidence,
    Option,
    Requirement,
    best_feasible,
    options_from_frame,
    pareto_frontier,
    point_evidence,
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


def evidence_for(
    best: Option,
    baseline: Option,
    policies: pd.DataFrame,
    paired_frame: pd.DataFrame,
    split: str | None,
) -> tuple[Evidence, str]:
    """Paired evidence for the sentence, and a note on where it comes from."""
    if best.kind == "model":
        rows = paired_frame[paired_frame["model"] == best.name].to_dict("records")
        if rows:
            paired = rows[0]
            ci = (paired["ratio_lo"], paired["ratio_hi"])
            items = f"{split} items" if split else "items"
            return Evidence(paired["ratio"], paired["savings"], ci, int(paired["n"]), items), ""
    else:
        row = policies[policies["name"] == best.name].iloc[0]
        if row["baseline"] == baseline.name and pd.notna(row["kept"]):
            band = (row["kept_lo"], row["kept_hi"]) if pd.notna(row["kept_lo"]) else None
            savings = None if pd.isna(row["savings"]) else float(row["savings"])
            n = None if pd.isna(row["n_items"]) else int(row["n_items"])
            evidence = Evidence(float(row["kept"]), savings, band, n, "held-out items")
            return evidence, " (from `tradeoff fit`)"
    return point_evidence(best, baseline), (
        " (point estimates: the policy was fitted against another baseline or other items)"
    )


def show_recommendation(
    best: Option | None,
    baseline: Option,
    requirement: Requirement,
    evidence: tuple[Evidence, str] | None,
) -> None:
    with st.container(key="recommendation", border=True):
        st.caption(f"Requirement: `{requirement.statement()}` (baseline: {baseline.name})")
        if best is None or evidence is None:
            st.warning(
                "No model or fitted policy meets this requirement on this split. Relax it, or "
                "fit a policy for it below."
            )
            return
        kind = "fitted policy" if best.kind == "policy" else "single model"
        st.markdown(f"**Recommended: {best.name}** ({kind})")
        st.markdown(f"{best.name} {savings_sentence(evidence[0], baseline.name)}.{evidence[1]}")


def sweep_options(dataset: str, split: str | None) -> list[Option]:
    """`tradeoff frontier`'s policy sweeps (fitted on the other items), when asked for."""
    if not st.toggle(
        "Add the fitted frontier (task_table and learned sweeps, as `tradeoff frontier`)",
        key="show_sweeps",
    ):
        return []
    frontier = replay.frontier(dataset, split)
    return [
        Option(
            p["name"],
            "sweep",
            p["accuracy"],
            1000 * p["cost_per_request_usd"],
            accuracy_lo=p["accuracy_ci"][0],
            accuracy_hi=p["accuracy_ci"][1],
        )
        for p in frontier["points"]
        if p["kind"] == "policy"
    ]


def render() -> None:
    st.title("Tradeoffs")
    _, datasets = data.require_outcomes()
    dataset = data.choose_dataset(datasets)
    split = data.choose_split(dataset)

    ranked = data.query(queries.models_by_accuracy, dataset)
    requirement = requirement_controls(ranked, ranked[0])
    summary = data.query(queries.tradeoff_summary, dataset, split, requirement.baseline)
    stats, oracle = summary["stats"], summary["oracle"]
    models = options_from_frame(stats, "model", "model")
    policy_rows = data.query(queries.fitted_policies, dataset)
    policies = options_from_frame(policy_rows, "policy", "name")
    baseline = next((o for o in models if o.name == requirement.baseline), None)
    if baseline is None:
        st.info(f"{requirement.baseline} has no outcomes on the {split} split; pick another.")
        st.stop()
    candidates = models + policies
    best = best_feasible(candidates, requirement)
    evidence = evidence_for(best, baseline, policy_rows, summary["paired"], split) if best else None
    show_recommendation(best, baseline, requirement, evidence)

    sweeps = sweep_options(dataset, split)
    points = candidates + sweeps
    if oracle is not None:
        points.append(Option("oracle", "oracle", **oracle_fields(oracle)))
    st.altair_chart(
        tradeoff_chart(
            points,
            pareto_frontier(candidates + sweeps),
            min_accuracy=requirement.min_accuracy_share * baseline.accuracy,
            recommended=best.name if best else None,
        ),
        width="stretch",
        height=TRADEOFF_HEIGHT,
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

    fitting.fit_section(dataset, requirement, split)


def oracle_fields(oracle: dict[str, float]) -> dict[str, float]:
    return {
        "accuracy": oracle["accuracy"],
        "cost_per_1k": oracle["cost_per_1k"],
        "accuracy_lo": oracle["accuracy_lo"],
        "accuracy_hi": oracle["accuracy_hi"],
    }


if __name__ == "__main__":
    render()
