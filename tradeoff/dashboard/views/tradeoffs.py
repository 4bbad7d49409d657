"""Tradeoffs (the landing page): every model and fitted policy on cost vs accuracy, on one item
set, and the requirement as controls that pick the cheapest option meeting it at its lower
bound."""

from __future__ import annotations

import streamlit as st

from tradeoff.dashboard import analytics, data, fitting, queries, replay
from tradeoff.dashboard.charts import VERDICT_KEY, show, tradeoff_chart
from tradeoff.dashboard.choice import (
    Option,
    Requirement,
    best_feasible,
    on_average_only,
    pareto_frontier,
    savings_sentence,
    verdicts,
    with_kept,
)
from tradeoff.dashboard.itemsets import ItemSet
from tradeoff.dashboard.options import oracle_option, policy_options, single_options, sweep_options
from tradeoff.dashboard.tables import options_table

NO_LATENCY_HELP = (
    "No latency was recorded for this dataset (imported outcomes often carry none), so a p95 "
    "latency cap cannot be checked. Record outcomes with `tradeoff eval` to use one."
)


def requirement_controls(
    model_names: list[str], default_baseline: str, latency_recorded: bool
) -> Requirement:
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
        use_latency = st.checkbox(
            "p95 latency cap (seconds)",
            key="use_lat",
            disabled=not latency_recorded,
            help=None if latency_recorded else NO_LATENCY_HELP,
        )
        latency = st.number_input(
            "p95 latency cap",
            min_value=0.1,
            value=2.0,
            step=0.1,
            key="lat_cap",
            disabled=not (use_latency and latency_recorded),
            label_visibility="collapsed",
        )
        if not latency_recorded:
            st.caption("No latency recorded for this dataset: no latency cap.")
    return Requirement(
        baseline=baseline,
        min_accuracy_share=share / 100,
        min_reliability_share=reliability / 100 if use_reliability else None,
        max_p95_latency_s=float(latency) if use_latency and latency_recorded else None,
    )


def show_recommendation(
    candidates: list[Option], baseline: Option, requirement: Requirement, items: ItemSet
) -> Option | None:
    """The cheapest option meeting the requirement at its lower bound, and the cheaper ones
    that meet it on average only (never recommended)."""
    best = best_feasible(candidates, requirement)
    cheaper = on_average_only(candidates, requirement, best.cost_per_1k if best else float("inf"))
    with st.container(key="recommendation", border=True):
        st.caption(
            f"Requirement: `{requirement.statement()}` (baseline: {baseline.name}); compared "
            f"on {items.label()}. Meets = at the lower bound, as `tradeoff fit` decides."
        )
        if best is None:
            st.warning(
                "No model or fitted policy meets this requirement at its lower bound on these "
                "items. Relax it, or fit a policy for it below."
            )
        elif best.name == baseline.name and best.kind == "model":
            st.markdown(f"**Recommended: keep {best.name}** (the baseline)")
            st.markdown(
                f"Nothing cheaper meets the requirement at its lower bound on these items; "
                f"{best.name} scores {best.accuracy:.1%} accuracy there (95% CI "
                f"{best.accuracy_lo:.1%}–{best.accuracy_hi:.1%}), on {best.n:,} items of "
                f"{items.label()}."
            )
        else:
            shown = with_kept(best, baseline)
            kind = "fitted policy" if best.kind == "policy" else "single model"
            version = f" version {best.version}" if best.version is not None else ""
            st.markdown(f"**Recommended: {best.name}**{version} ({kind})")
            where = "held-out items" if best.kind == "policy" else f"items of {items.label()}"
            st.markdown(f"{best.name} {savings_sentence(shown, baseline.name, where)}.")
            if best.bound is not None:
                st.caption(
                    f"Meets {requirement.min_accuracy_share:.0%} at its lower bound "
                    f"{best.bound:.1%}: {best.bound_from}."
                    + (f" Accepted for `{best.accepted_for}`." if best.accepted_for else "")
                )
        for option in cheaper:
            shown = with_kept(option, baseline)
            bound = "no lower bound" if option.bound is None else f"lower bound {option.bound:.1%}"
            st.warning(
                f"**{option.name}** is cheaper but meets it **on average only**: it keeps "
                f"{shown.kept:.1%} of {baseline.name}'s accuracy at its point estimate, "
                f"{bound} (below {requirement.min_accuracy_share:.0%}). Not recommended.",
                icon=":material/error:",
            )
    return best


def frontier_toggle(dataset: str, items: ItemSet) -> list[Option]:
    """`tradeoff frontier`'s policy sweeps (fitted on the other items), when asked for."""
    label = "Add the fitted frontier (task_table and learned sweeps, as `tradeoff frontier`)"
    if items == ItemSet():
        st.toggle(
            label,
            key="show_sweeps",
            value=False,
            disabled=True,
            help="The sweeps are fitted on the other items: pick a held-out set.",
        )
        return []
    if not st.toggle(label, key="show_sweeps"):
        return []
    return sweep_options(replay.frontier(dataset, items))


def render() -> None:
    st.title("Tradeoffs")
    _, datasets = data.require_outcomes()
    dataset = data.choose_dataset(datasets)
    policy_rows = data.query(queries.fitted_policies, dataset)
    items = data.choose_items(dataset)

    ranked = data.query(queries.models_by_accuracy, dataset)
    latency_recorded = data.query(queries.latency_recorded, dataset)
    requirement = requirement_controls(ranked, ranked[0], latency_recorded)
    summary = data.query(analytics.tradeoff_summary, dataset, items, requirement.baseline)
    models = single_options(summary["stats"], summary["paired"])
    baseline = next((o for o in models if o.name == requirement.baseline), None)
    if baseline is None:
        st.info(f"{requirement.baseline} has no outcomes on {items.label()}; pick another.")
        st.stop()
    placed = policy_options(policy_rows, items, requirement.baseline)
    candidates = models + placed.options
    best = show_recommendation(candidates, baseline, requirement, items)

    sweeps = frontier_toggle(dataset, items)
    points = candidates + sweeps
    if summary["oracle"] is not None:
        points.append(oracle_option(summary["oracle"]))
    judged = verdicts(candidates, requirement)
    show(
        st,
        tradeoff_chart(
            points,
            pareto_frontier(candidates + sweeps),
            judged=judged,
            min_accuracy=requirement.min_accuracy_share * baseline.accuracy,
            recommended=best.name if best else None,
            baseline=baseline.name,
        ),
    )
    st.caption(VERDICT_KEY)
    st.caption(
        f"Everything on {items.label()} of {dataset} ({baseline.n:,} items): single models and "
        "the oracle measured there, fitted policies whose held-out metrics come from the same "
        "items. Bars: 95% intervals. Labels are left off where they would overlap: hover a "
        "point for its name and intervals. Reliability and the latency cap are compared at "
        "their point estimates. The oracle routes each item to the cheapest model that got it "
        "right: a bound, not an option."
    )
    if placed.elsewhere:
        where = ", ".join(
            f"{name} ({s.label() if s else 'items not recorded'})"
            for name, s in sorted(placed.elsewhere.items())
        )
        st.caption(
            f"Not on this chart, measured on other items: {where}. Pick their items under "
            "“Compare on” to compare them."
        )
    st.dataframe(options_table(candidates, judged, baseline.name), hide_index=True, width="stretch")
    fitting.fit_section(dataset, requirement, items)


if __name__ == "__main__":
    render()
