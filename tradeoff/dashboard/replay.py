"""A policy's decisions on a sample of stored items, for the Policy detail page.

The decisions come from the policy's own `plan_many` (the code the proxy runs) on the items its
held-out metrics were measured on (`itemsets.of_policy`); their outcomes are then joined in the
store (`queries.decision_outcomes`). Planning is Python per item, so it runs on a stable sample
of at most `SAMPLE` of those items and is cached per (policy, store version).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from tradeoff.dashboard import data, queries
from tradeoff.dashboard.itemsets import ItemSet
from tradeoff.evals.errors import TradeoffError
from tradeoff.evals.store import Store

SAMPLE = 2000


class ReplayUnavailable(Exception):
    """The policy cannot be rebuilt or planned here; the message says why."""


def decisions(artifact_json: str, dataset: str, items: ItemSet) -> tuple[pd.DataFrame, int]:
    """Columns item_id, task, model (the first model of each plan), chain (the whole order), on
    a sample of `items`; and how many items the set has in all."""
    sample, total = data.query(queries.items_for_replay, dataset, items, SAMPLE)
    return _plan(artifact_json, sample), total


@st.cache_data(ttl=600, show_spinner="Planning each sampled item with the policy")
def _plan(artifact_json: str, items: pd.DataFrame) -> pd.DataFrame:
    from tradeoff.policies.artifact import artifact_from_dict
    from tradeoff.policies.families.base import RouteRequest

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


def frontier(dataset: str, items: ItemSet) -> dict[str, Any]:
    """`policies.replay.frontier.compute_frontier` measured on `items` (fitted on the other items), as
    a dict, cached per store version."""
    path = data.store_path()
    return _frontier(path, data.store_version(path), dataset, items)


@st.cache_data(ttl=600, show_spinner="Fitting the frontier sweeps on the other items")
def _frontier(path: str, version: tuple[float, float], dataset: str, items: ItemSet) -> Any:
    from tradeoff.policies.replay.frontier import compute_frontier

    del version  # only part of the cache key
    return compute_frontier(
        Store(path), dataset, items.split, seed=items.seed, test_fraction=items.fraction
    ).to_dict()
