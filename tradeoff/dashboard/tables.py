"""Tables for people: human column names with units, intervals as one column, and words where a
figure is missing ("no latency recorded") rather than None or NaN."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tradeoff.dashboard.choice import Option, number

NO_LATENCY = "no latency recorded"
NOT_MEASURED = "not measured"


def pct(value: Any, digits: int = 1) -> str:
    v = number(value)
    return "" if v is None else f"{v * 100:.{digits}f}%"


def pct_range(lo: Any, hi: Any, digits: int = 1) -> str:
    a, b = number(lo), number(hi)
    return "" if a is None or b is None else f"{a * 100:.{digits}f}–{b * 100:.{digits}f}%"


def usd(value: Any, digits: int = 4) -> str:
    v = number(value)
    return "" if v is None else f"${v:,.{digits}f}"


def latency(value: Any) -> str:
    v = number(value)
    return NO_LATENCY if v is None else f"{v:,.0f}"


def options_table(options: list[Option], judged: dict[str, str], baseline: str) -> pd.DataFrame:
    """The Tradeoffs table: one row per model or policy, cheapest first."""
    rows = []
    for o in sorted(options, key=lambda o: o.cost_per_1k):
        rows.append(
            {
                "Option": o.name if o.version is None else f"{o.name} (v{o.version})",
                "Kind": {"model": "single model", "policy": "fitted policy"}.get(o.kind, o.kind),
                "Meets the requirement?": judged.get(o.name, ""),
                f"Share of {baseline}'s accuracy": pct(o.kept),
                "Share 95% CI": pct_range(o.kept_lo, o.kept_hi),
                "Lower bound decided on": pct(o.bound),
                "Accuracy": pct(o.accuracy),
                "Accuracy 95% CI": pct_range(o.accuracy_lo, o.accuracy_hi),
                "Cost per 1k requests (USD)": usd(o.cost_per_1k),
                "Reliability": "" if o.reliability is None else f"{o.reliability:.3f}",
                "p95 latency (ms)": latency(o.p95_latency_ms),
                "Accepted for": o.accepted_for or "",
                "Items": o.n,
            }
        )
    return pd.DataFrame(rows)


def human(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """`frame` with only the columns in `names`, renamed, in that order."""
    return frame[[c for c in names if c in frame.columns]].rename(columns=names)
