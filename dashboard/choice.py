"""Choosing among options (single models, fitted policies) under the requirement set on screen.

Pure functions over a handful of points, so the Tradeoffs page stays a thin layer and the logic
is tested without Streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Option:
    """One point of the tradeoff space: a single model, a fitted policy or the oracle."""

    name: str
    kind: str  # "model" | "policy" | "oracle"
    accuracy: float
    cost_per_1k: float
    accuracy_lo: float | None = None
    accuracy_hi: float | None = None
    reliability: float | None = None
    p95_latency_ms: float | None = None


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


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def options_from_frame(frame: pd.DataFrame, kind: str, name_column: str) -> list[Option]:
    """Options from a stats frame (`queries.model_stats` or `queries.fitted_policies`)."""
    options = []
    for row in frame.to_dict("records"):
        accuracy, cost = _number(row.get("accuracy")), _number(row.get("cost_per_1k"))
        if accuracy is None or cost is None:
            continue  # a policy row without held-out metrics cannot be placed
        options.append(
            Option(
                name=str(row[name_column]),
                kind=kind,
                accuracy=accuracy,
                cost_per_1k=cost,
                accuracy_lo=_number(row.get("accuracy_lo")),
                accuracy_hi=_number(row.get("accuracy_hi")),
                reliability=_number(row.get("reliability")),
                p95_latency_ms=_number(row.get("p95_latency_ms")),
            )
        )
    return options


def pareto_frontier(options: list[Option]) -> list[Option]:
    """Options no other option beats on both cost and accuracy, cheapest first."""
    frontier: list[Option] = []
    for option in sorted(options, key=lambda o: (o.cost_per_1k, -o.accuracy)):
        if not frontier or option.accuracy > frontier[-1].accuracy:
            frontier.append(option)
    return frontier


def feasible(option: Option, baseline: Option, requirement: Requirement) -> bool:
    if option.accuracy < requirement.min_accuracy_share * baseline.accuracy:
        return False
    if requirement.min_reliability_share is not None:
        if option.reliability is None or baseline.reliability is None:
            return False
        if option.reliability < requirement.min_reliability_share * baseline.reliability:
            return False
    if requirement.max_p95_latency_s is not None:
        limit_ms = requirement.max_p95_latency_s * 1000
        if option.p95_latency_ms is None or option.p95_latency_ms > limit_ms:
            return False
    return True


def best_feasible(options: list[Option], requirement: Requirement) -> Option | None:
    """The cheapest option meeting the requirement (ties: the more accurate); None if none does.

    The oracle is a bound, not a deployable option, so it is never chosen.
    """
    baseline = next((o for o in options if o.name == requirement.baseline), None)
    if baseline is None:
        return None
    candidates = [o for o in options if o.kind != "oracle" and feasible(o, baseline, requirement)]
    if not candidates:
        return None
    return min(candidates, key=lambda o: (o.cost_per_1k, -o.accuracy))


@dataclass(frozen=True)
class Evidence:
    """How an option compares with the baseline: accuracy kept and cost saved, as shares."""

    kept: float  # option accuracy / baseline accuracy
    savings: float | None  # 1 - option cost / baseline cost; None when the baseline is free
    kept_ci: tuple[float, float] | None = None
    n: int | None = None  # items both were measured on (paired)
    items: str = "items"  # what those items are, e.g. "held-out items", "test items"


def point_evidence(option: Option, baseline: Option) -> Evidence:
    """From point estimates alone (no CI): for options measured on other items."""
    kept = option.accuracy / baseline.accuracy if baseline.accuracy else float("nan")
    savings = 1 - option.cost_per_1k / baseline.cost_per_1k if baseline.cost_per_1k > 0 else None
    return Evidence(kept=kept, savings=savings)


def savings_sentence(evidence: Evidence, baseline: str) -> str:
    """The seed's sentence: "keeps 95% of large's accuracy (95% CI 88-103%) at 90% less cost"."""
    band = ""
    if evidence.kept_ci is not None:
        band = f" (95% CI {evidence.kept_ci[0]:.0%}–{evidence.kept_ci[1]:.0%})"
    text = f"keeps {evidence.kept:.0%} of {baseline}'s accuracy{band}"
    if evidence.savings is None:
        text += " (the baseline's cost is zero, so no saving can be stated)"
    elif evidence.savings >= 0:
        text += f" at {evidence.savings:.0%} less cost"
    else:
        text += f" at {-evidence.savings:.0%} more cost"
    if evidence.n is not None:
        text += f", on {evidence.n:,} {evidence.items}"
    return text
