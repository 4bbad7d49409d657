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


def fit_command(dataset: str, requirement: Requirement, seed: int, test_split: str | None) -> str:
    """The CLI equivalent, so what the button does can be repeated (and scripted)."""
    command = [
        "tradeoff", "fit", "--dataset", dataset, "--baseline", requirement.baseline,
        "--require", requirement.statement(), "--minimize", "cost", "--seed", str(seed),
    ]  # fmt: skip
    if test_split is not None:
        command += ["--test-split", test_split]
    return shlex.join(command)


def fit_and_save(
    store: Store, dataset: str, requirement: Requirement, seed: int, test_split: str | None
) -> Any:
    """Fit with `policies.fitting.fit_policy` (which stores the artifact); the FitReport.

    The held-out split is the one the page shows, so the new policy is measured on the same
    items as the single models beside it.
    """
    from policies.fitting import fit_policy

    return fit_policy(
        store,
        dataset,
        requirement.statement(),
        baseline=requirement.baseline,
        objective=OBJECTIVE,
        seed=seed,
        test_split=test_split,
    )


def fit_section(dataset: str, requirement: Requirement, test_split: str | None) -> None:
    st.subheader("Fit a policy for this requirement")
    seed = int(st.number_input("Seed", min_value=0, value=0, step=1, key="fit_seed"))
    st.code(fit_command(dataset, requirement, seed, test_split), language="bash")
    if st.button("Fit and save policy", key="fit_button", type="primary"):
        with st.spinner(
            "Cross-fitting on the train split, accepting on a confidence bound, reporting on test"
        ):
            try:
                store = Store(data.store_path())
                report = fit_and_save(store, dataset, requirement, seed, test_split)
            except TradeoffError as exc:
                st.session_state["fit_result"] = ("error", str(exc))
            else:
                st.session_state["fit_result"] = (
                    "ok",
                    f"{report.sentence()}\n\n{report.to_json()}",
                )
                st.rerun()  # redraw the page with the new policy among the options
    result = st.session_state.get("fit_result")
    if result is None:
        return
    status, text = result
    if status == "error":
        st.error(text)
        return
    summary, _, report_json = text.partition("\n\n")
    st.success(f"Fitted and saved to the store: {summary}. It is now on the chart above.")
    with st.expander("Fit report (JSON)"):
        st.code(report_json, language="json")
