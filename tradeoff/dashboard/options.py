"""The Tradeoffs page's options, built from the store's frames: every one on the same items.

Single models come from `analytics.tradeoff_summary` on the chosen item set (with their paired
share of the baseline's accuracy); a fitted policy is an option only when its held-out metrics
were measured on that same item set, and the others are listed apart (`Placed.elsewhere`) so the
page can say where they were measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tradeoff.dashboard.choice import Option, number
from tradeoff.dashboard.itemsets import ItemSet

__all__ = ["Placed", "oracle_option", "policy_options", "single_options", "sweep_options"]

ACCEPTANCE = (
    "the bound it was accepted at (training items, cross-fitted, as `tradeoff fit` decides)"
)
HELD_OUT_CI = "the lower end of its held-out 95% interval"
PAIRED_CI = "the lower end of its paired 95% interval on these items"


def _measured(row: Mapping[Any, Any], accuracy: float, cost: float) -> dict[str, Any]:
    """The figures every option has, from its row of the item set's summary."""
    return {
        "accuracy": accuracy,
        "cost_per_1k": cost,
        "accuracy_lo": number(row.get("accuracy_lo")),
        "accuracy_hi": number(row.get("accuracy_hi")),
        "reliability": number(row.get("reliability")),
        "p95_latency_ms": number(row.get("p95_latency_ms")),
    }


def single_options(stats: pd.DataFrame, paired: pd.DataFrame) -> list[Option]:
    """One option per model, with its kept share of the baseline's accuracy when paired."""
    by_model = {r["model"]: r for r in paired.to_dict("records")} if not paired.empty else {}
    out = []
    for row in stats.to_dict("records"):
        accuracy, cost = number(row.get("accuracy")), number(row.get("cost_per_1k"))
        if accuracy is None or cost is None:
            continue
        pair = by_model.get(row["model"], {})
        kept_lo = number(pair.get("ratio_lo"))
        out.append(
            Option(
                name=str(row["model"]),
                kind="model",
                **_measured(row, accuracy, cost),
                kept=number(pair.get("ratio")),
                kept_lo=kept_lo,
                kept_hi=number(pair.get("ratio_hi")),
                bound=kept_lo,
                bound_from=PAIRED_CI if kept_lo is not None else "",
                savings=number(pair.get("savings")),
                n=int(pair["n"]) if pair.get("n") is not None else int(row["n_items"]),
            )
        )
    return out


@dataclass
class Placed:
    """Policies measured on the chosen items (options) and those measured elsewhere."""

    options: list[Option] = field(default_factory=list)
    elsewhere: dict[str, ItemSet | None] = field(default_factory=dict)  # name -> its item set


def policy_options(policies: pd.DataFrame, items: ItemSet, baseline: str) -> Placed:
    """Options of the fitted policies measured on `items`. Their kept share, interval and bound
    count only against the baseline they were fitted with; against another one the page has
    point estimates alone (`choice.with_kept`)."""
    placed = Placed()
    records: list[dict[str, Any]] = policies.to_dict("records")  # type: ignore[assignment]
    for row in records:
        accuracy, cost = number(row.get("accuracy")), number(row.get("cost_per_1k"))
        measured_on = row.get("items")
        if measured_on != items or accuracy is None or cost is None:
            placed.elsewhere[str(row["name"])] = measured_on
            continue
        same = row.get("baseline") == baseline
        bound, bound_from = _policy_bound(row) if same else (None, "")
        version = row.get("version")
        placed.options.append(
            Option(
                name=str(row["name"]),
                kind="policy",
                **_measured(row, accuracy, cost),
                kept=number(row.get("kept")) if same else None,
                kept_lo=number(row.get("kept_lo")) if same else None,
                kept_hi=number(row.get("kept_hi")) if same else None,
                bound=bound,
                bound_from=bound_from,
                accepted_for=_accepted_for(row),
                savings=number(row.get("savings")) if same else None,
                n=None if pd.isna(row.get("n_items")) else int(row["n_items"]),
                version=None if pd.isna(version) else int(version),
            )
        )
    return placed


def _policy_bound(row: dict[str, Any]) -> tuple[float | None, str]:
    if row.get("keeps_baseline"):
        return 1.0, "it routes every request to the baseline itself"
    accepted = number(row.get("accepted_share"))
    if accepted is not None:
        return accepted, ACCEPTANCE
    kept_lo = number(row.get("kept_lo"))
    return kept_lo, HELD_OUT_CI if kept_lo is not None else ""


def _accepted_for(row: dict[str, Any]) -> str | None:
    requirement = row.get("requirement")
    if not requirement:
        return None
    return f"{requirement} (baseline {row.get('baseline')})"


def sweep_options(frontier: dict[str, Any]) -> list[Option]:
    """`tradeoff frontier`'s policy paths (fitted on the other items): references, no bound."""
    return [
        Option(
            p["name"],
            "sweep",
            p["accuracy"],
            1000 * p["cost_per_request_usd"],
            accuracy_lo=p["accuracy_ci"][0],
            accuracy_hi=p["accuracy_ci"][1],
            n=frontier.get("n"),
        )
        for p in frontier["points"]
        if p["kind"] == "policy"
    ]


def oracle_option(oracle: dict[str, float]) -> Option:
    return Option(
        "oracle",
        "oracle",
        oracle["accuracy"],
        oracle["cost_per_1k"],
        accuracy_lo=oracle["accuracy_lo"],
        accuracy_hi=oracle["accuracy_hi"],
        n=int(oracle["n_items"]),
    )
