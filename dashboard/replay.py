"""A policy's decisions on a sample of stored items, for the Policy detail page.

The decisions come from the policy's own `plan_many` (the code the proxy runs); their outcomes
are then joined in DuckDB (`queries.decision_outcomes`). Planning is Python per item, so it runs
on a stable sample of at most `SAMPLE` items and is cached per (policy, store version).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import data, queries
from evals.errors import TradeoffError

SAMPLE = 2000


class ReplayUnavailable(Exception):
    """The policy cannot be rebuilt or planned here; the message says why."""


def decisions(artifact_json: str, dataset: str, split: str | None) -> pd.DataFrame:
    """Columns item_id, task, model (the first model of each plan), chain (the whole order)."""
    items = data.query(queries.items_for_replay, dataset, split, SAMPLE)
    return _plan(artifact_json, items)


@st.cache_data(ttl=600, show_spinner="Planning each sampled item with the policy")
def _plan(artifact_json: str, items: pd.DataFrame) -> pd.DataFrame:
    from policies.artifact import artifact_from_dict
    from policies.base import RouteRequest

    try:
        policy = artifact_from_dict(json.loads(artifact_json)).policy()
        plans = policy.plan_many(
            [
                RouteRequest(prompt=p, task=t)
                for p, t in zip(items["prompt"], items["task"], strict=True)
            ]
        )
    except TradeoffError as exc:
        raise ReplayUnavailable(str(exc)) from None
    return pd.DataFrame(
        {
            "item_id": items["item_id"],
            "task": items["task"],
            "model": [p.models[0] for p in plans],
            "chain": [" → ".join(p.models) for p in plans],
        }
    )
