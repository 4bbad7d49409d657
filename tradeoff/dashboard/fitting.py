"""The "fit a policy" panel: the same fitting code as `tradeoff fit`, then saved to the store.

The items the fit holds out are its own control, shown in the command: the page's "Compare on"
choice is a viewing choice and never becomes `--test-split` silently (viewing `train` must not
fit on the test split). A result belongs to the controls that produced it: change the
requirement, the baseline, the seed or the held-out items and the old result (or error) is gone.
"""

from __future__ import annotations

import shlex
from typing import Any

import streamlit as st

from tradeoff.dashboard import data, queries
from tradeoff.dashboard.choice import Requirement
from tradeoff.dashboard.itemsets import ItemSet, default_for
from tradeoff.dashboard.serving import serve_panel
from tradeoff.evals.errors import TradeoffError
from tradeoff.evals.store import Store
from tradeoff.policies.fit.splits import DEFAULT_TEST_FRACTION

OBJECTIVE = "minimize cost"


def fit_command(dataset: str, requirement: Requirement, seed: int, held_out: ItemSet) -> str:
    """The CLI equivalent, so what the button does can be repeated (and scripted)."""
    command = [
        "tradeoff", "fit", "--dataset", dataset, "--baseline", requirement.baseline,
        "--require", requirement.statement(), "--minimize", "cost", "--seed", str(seed),
        *held_out.fit_flags(),
    ]  # fmt: skip
    return shlex.join(command)


def fit_and_save(
    store: Store, dataset: str, requirement: Requirement, seed: int, held_out: ItemSet
) -> Any:
    """Fit with `policies.fit.fitting.fit_policy` (which stores and promotes the artifact); the
    FitReport."""
    from tradeoff.policies.fit.fitting import fit_policy
    from tradeoff.policies.fit.options import FitOptions

    return fit_policy(
        store,
        FitOptions(
            dataset,
            requirement.statement(),
            baseline=requirement.baseline,
            objective=OBJECTIVE,
            seed=seed,
            test_split=held_out.split,
            test_fraction=held_out.fraction,
        ),
    )


def held_out_control(dataset: str, seed: int) -> ItemSet:
    """Which items the fit holds out: a named split, or a seeded hash fraction (the fit's seed).
    The default is what `tradeoff fit` holds out when told nothing."""
    sizes = data.query(queries.split_sizes, dataset)
    hashed = ItemSet(fraction=DEFAULT_TEST_FRACTION, seed=seed)
    default = default_for(sizes)
    named = [ItemSet(split=s) for s in sorted(k for k in sizes if k is not None)]
    choices = list(dict.fromkeys([default if default.split else hashed, *named, hashed]))
    labels = [c.option() for c in choices]
    chosen = st.selectbox(
        "Held out for the fit (never used to fit; the policy's figures come from them)",
        labels,
        key=f"fit_held_out_{dataset}",
    )
    return choices[labels.index(chosen)] if chosen in labels else choices[0]


def fit_section(dataset: str, requirement: Requirement, viewed: ItemSet) -> None:
    st.subheader("Fit a policy for this requirement")
    left, right = st.columns([1, 3])
    seed = int(left.number_input("Seed", min_value=0, value=0, step=1, key="fit_seed"))
    with right:
        held_out = held_out_control(dataset, seed)
    st.code(fit_command(dataset, requirement, seed, held_out), language="bash")
    if held_out != viewed:
        st.caption(
            f"The page compares on {viewed.label()}; this fit is measured on "
            f"{held_out.label()}, so its policy shows on the chart when you compare on those."
        )
    signature = (dataset, requirement, seed, held_out)
    if st.button("Fit and save policy", key="fit_button", type="primary"):
        with st.spinner(
            "Cross-fitting on the training items, accepting at a confidence bound, "
            "reporting on the held-out ones"
        ):
            try:
                store = Store(data.store_path())
                report = fit_and_save(store, dataset, requirement, seed, held_out)
            except TradeoffError as exc:
                st.session_state["fit_result"] = (signature, "error", str(exc), None)
            else:
                st.session_state["fit_result"] = (signature, "ok", "", _done(store, report))
                st.session_state["items_next"] = held_out.option()  # compare where measured
                st.rerun()  # redraw the page with the new policy among the options
    result = st.session_state.get("fit_result")
    if result is None or result[0] != signature:
        return  # no fit yet, or one for other controls: never shown under these
    _, status, error, done = result
    if status == "error":
        st.error(error)
        return
    st.success(
        f"Fitted and saved policy **{done['name']}** version {done['version']} (serving): it "
        f"{done['sentence']}. It is on the chart above, compared on {held_out.label()}."
    )
    row = data.query(queries.policy_row, done["policy_id"])
    if row is not None:
        serve_panel(
            name=done["name"],
            version=done["version"],
            serving_version=done["version"],
            artifact_json=row["artifact"],
            models=done["models"],
            baseline=done["baseline"],
            known_models=data.query(queries.model_rows, [*done["models"], done["baseline"]]),
            store=data.store_label(),
            key="fit",
        )
    with st.expander("Fit report (JSON)"):
        st.code(done["json"], language="json")


def _done(store: Store, report: Any) -> dict[str, Any]:
    """What the page keeps of a fit: the saved policy's name, version and id, its sentence."""
    from tradeoff.policies.versions import version_of

    artifact = report.artifact
    return {
        "name": artifact.name,
        "version": version_of(store, artifact.name, artifact.policy_id),
        "policy_id": artifact.policy_id,
        "sentence": report.sentence(),
        "json": report.to_json(),
        "models": list(artifact.models),
        "baseline": artifact.baseline,
    }
