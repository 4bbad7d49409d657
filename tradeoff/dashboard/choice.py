"""Choosing among options (single models, fitted policies) under the requirement set on screen.

An option *meets* the accuracy requirement only at its lower bound, as `tradeoff fit` decides:
a single model when the lower end of its paired 95% interval of kept accuracy (its accuracy as
a share of the baseline's, on the same items) reaches the share; a fitted policy when the bound
it was accepted at does (`queries.accepted_share`), or, for a policy without one, the lower end
of its held-out interval. An option whose point estimate reaches the share but whose bound does
not *meets on average only*: shown, never recommended. Reliability and the latency cap are
compared at their point estimates (the store records no interval for them), and the caption
says so. Pure functions over a handful of points, tested without Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

MEETS = "meets"
ON_AVERAGE = "meets on average only"
FAILS = "does not meet"
VERDICTS = (MEETS, ON_AVERAGE, FAILS)


@dataclass(frozen=True)
class Option:
    """One point of the tradeoff space: a single model, a fitted policy, a sweep or the oracle."""

    name: str
    kind: str  # "model" | "policy" | "sweep" | "oracle"
    accuracy: float
    cost_per_1k: float
    accuracy_lo: float | None = None
    accuracy_hi: float | None = None
    reliability: float | None = None
    p95_latency_ms: float | None = None
    kept: float | None = None  # accuracy as a share of the baseline's, on the same items
    kept_lo: float | None = None
    kept_hi: float | None = None
    bound: float | None = None  # the lower bound of `kept` that "meets" is decided on
    bound_from: str = ""  # where that bound comes from, in words
    accepted_for: str | None = None  # a policy: the requirement it was accepted for
    savings: float | None = None  # 1 - cost / the baseline's cost
    n: int | None = None  # items the figures come from
    version: int | None = None

    @property
    def deployable(self) -> bool:
        """Models and stored policies can be served; sweeps and the oracle are references."""
        return self.kind in ("model", "policy")


@dataclass(frozen=True)
class Requirement:
    """What the controls state: shares of the baseline's figures, and an absolute latency cap."""

    baseline: str
    min_accuracy_share: float  # 0.85 = at least 85% of the baseline's accuracy
    min_reliability_share: float | None = None
    max_p95_latency_s: float | None = None

    def statement(self) -> str:
        """The requirement in the CLI's language (`tradeoff fit --require ...`)."""
        parts = [f"accuracy >= {_pct(self.min_accuracy_share)} of baseline"]
        if self.min_reliability_share is not None:
            parts.append(f"reliability >= {_pct(self.min_reliability_share)} of baseline")
        if self.max_p95_latency_s is not None:
            parts.append(f"p95_latency <= {self.max_p95_latency_s:g}s")
        return " and ".join(parts)


def _pct(share: float) -> str:
    return f"{share * 100:g}%"


def number(value: object) -> float | None:
    """A float, or None for None/NaN/NA."""
    if value is None or value is pd.NA:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def with_kept(option: Option, baseline: Option) -> Option:
    """`option` with its kept share against `baseline` filled in from point estimates where it
    has none (no interval, no bound: such an option can at best meet on average)."""
    if option.kept is not None or not baseline.accuracy:
        return option
    savings = 1 - option.cost_per_1k / baseline.cost_per_1k if baseline.cost_per_1k > 0 else None
    return replace(option, kept=option.accuracy / baseline.accuracy, savings=savings)


def verdict(option: Option, baseline: Option, requirement: Requirement) -> str:
    """MEETS, ON_AVERAGE or FAILS (see the module docstring)."""
    if requirement.min_reliability_share is not None:
        if option.reliability is None or baseline.reliability is None:
            return FAILS
        if option.reliability < requirement.min_reliability_share * baseline.reliability:
            return FAILS
    if requirement.max_p95_latency_s is not None:
        limit_ms = requirement.max_p95_latency_s * 1000
        if option.p95_latency_ms is None or option.p95_latency_ms > limit_ms:
            return FAILS
    share = requirement.min_accuracy_share
    if option.kind == "model" and option.name == baseline.name:
        return MEETS if share <= 1 else FAILS  # it keeps exactly 100% of itself
    if option.bound is not None and option.bound >= share:
        return MEETS
    kept = with_kept(option, baseline).kept
    return ON_AVERAGE if kept is not None and kept >= share else FAILS


def verdicts(options: list[Option], requirement: Requirement) -> dict[str, str]:
    """Each option's verdict by name (empty when the baseline is not among the options)."""
    baseline = next(
        (o for o in options if o.kind == "model" and o.name == requirement.baseline), None
    )
    if baseline is None:
        return {}
    return {o.name: verdict(o, baseline, requirement) for o in options}


def _cheapest(options: list[Option]) -> Option | None:
    return min(options, key=lambda o: (o.cost_per_1k, -o.accuracy)) if options else None


def best_feasible(options: list[Option], requirement: Requirement) -> Option | None:
    """The cheapest deployable option that meets the requirement at its lower bound (ties: the
    more accurate); None if none does. The oracle and the sweeps are references, never chosen."""
    judged = verdicts(options, requirement)
    return _cheapest([o for o in options if o.deployable and judged.get(o.name) == MEETS])


def on_average_only(
    options: list[Option], requirement: Requirement, cheaper_than: float
) -> list[Option]:
    """Deployable options cheaper than `cheaper_than` that meet the requirement on average only."""
    judged = verdicts(options, requirement)
    return sorted(
        (
            o
            for o in options
            if o.deployable and judged.get(o.name) == ON_AVERAGE and o.cost_per_1k < cheaper_than
        ),
        key=lambda o: o.cost_per_1k,
    )


def pareto_frontier(options: list[Option]) -> list[Option]:
    """Options no other option beats on both cost and accuracy, cheapest first."""
    frontier: list[Option] = []
    for option in sorted(options, key=lambda o: (o.cost_per_1k, -o.accuracy)):
        if not frontier or option.accuracy > frontier[-1].accuracy:
            frontier.append(option)
    return frontier


def savings_sentence(option: Option, baseline: str, items: str) -> str:
    """The seed's sentence: "keeps 95% of large's accuracy (95% CI 88-103%) at 90% less cost,
    on 60 items of the test split"."""
    assert option.kept is not None
    band = ""
    if option.kept_lo is not None and option.kept_hi is not None:
        band = f" (95% CI {option.kept_lo:.0%}–{option.kept_hi:.0%})"
    text = f"keeps {option.kept:.0%} of {baseline}'s accuracy{band}"
    if option.savings is None:
        text += " (the baseline's cost is zero, so no saving can be stated)"
    elif option.savings >= 0:
        text += f" at {option.savings:.0%} less cost"
    else:
        text += f" at {-option.savings:.0%} more cost"
    if option.n is not None:
        text += f", on {option.n:,} {items}"
    return text
