"""The "fit a policy" panel: the same fitting code as `tradeoff fit`, then saved to the store."""

from __future__ import annotations

import shlex
from typing import Any

import streamlit as st

from dashboard import data
from dashboard.choice import Requirement
from evals.errors import TradeoffError
from evals.store import Store

OBJECTIVE = "minimize cost"


def fit_command(dataset: str, requirement: Requirement, seed: int) -> str:
    """The CLI equivalent, so what the button does can be repeated (and scripted)."""
    return shlex.join(
        [
            "tradeoff", "fit", "--dataset", dataset, "--baseline", requirement.baseline,
            "--require", requirement.statement(), "--minimize", "cost", "--seed", str(seed),
        ]
    )  # fmt: skip


def fit_and_save(store: Store, dataset: str, requirement: Requirement, seed: int) -> Any:
    """Fit with `policies.fitting.fit_policy` and store the artifact; returns the FitReport."""
    try:
        from policies.fitting import fit_policy

        from policies.artifact import store_artifact
    except ImportError as exc:  # the policies package of this install predates fitting
        raise TradeoffError(f"policy fitting is not available in this install ({exc})") from None
    report = fit_policy(store, dataset, requirement.statement(), requirement.baseline, "cost", seed)
    store_artifact(store, report.artifact)
    return report


def fit_section(dataset: str, requirement: Requirement) -> None:
    st.subheader("Fit a policy for this requirement")
    seed = int(st.number_input("Seed", min_value=0, value=0, step=1, key="fit_seed"))
    st.code(fit_command(dataset, requirement, seed), language="bash")
    if st.button("Fit and save policy", key="fit_button", type="primary"):
        with st.spinner("Fitting on the train split, checking on validation, reporting on test"):
            try:
                report = fit_and_save(Store(data.store_path()), dataset, requirement, seed)
            except TradeoffError as exc:
                st.session_state["fit_result"] = ("error", str(exc))
            else:
                st.session_state["fit_result"] = ("ok", report.to_json())
    result = st.session_state.get("fit_result")
    if result is None:
        return
    status, text = result
    if status == "error":
        st.error(text)
        return
    st.success("Fitted and saved to the store; it now appears on the chart and in Policy detail.")
    with st.expander("Fit report (JSON)"):
        st.code(text, language="json")
