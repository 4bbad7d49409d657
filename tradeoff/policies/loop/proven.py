"""What an explored policy's traffic proves so far: the `explore` object of its status
(`tradeoff status`, `GET /tradeoff/status`, the dashboard's Loop page).

For each candidate, serving it alone in place of the baseline, on the requests where both were
measured: its kept accuracy (sum of its scores over the baseline's) with the live monitor's
anytime-valid lower bound (policies/loop/monitor.py, at 95% split over the open candidates, so
looking after every request and picking the best of them keeps the 95%), and its savings with a
95% interval (the delta method on the ratio of mean costs). A candidate is proven when the bound
meets the required share and it costs less; `refit_ready` once a proven one also has the requests
a refit's test needs (`REFIT_READY`). `summary` says it in a sentence, or what is missing: pairs
(about how many more, from how fast the bound has been closing) and their cost.

What promotes is not this but the refit's own test (`tradeoff refit --promote`): a policy fitted
and tested on traffic it was not fitted on.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from tradeoff.policies.fit.splits import DEFAULT_TEST_FRACTION
from tradeoff.policies.loop.explorer import Explorer
from tradeoff.policies.loop.monitor import ALPHA, Monitor
from tradeoff.policies.loop.promote import MIN_PAIRS

__all__ = ["REFIT_READY", "proven"]

Z95 = 1.959964
# Graded requests a refit needs for its promotion test to see MIN_PAIRS it did not fit on (the
# fit holds out DEFAULT_TEST_FRACTION of them).
REFIT_READY = math.ceil(MIN_PAIRS / DEFAULT_TEST_FRACTION)


def proven(explorer: Explorer) -> dict[str, Any]:
    """The `explore` object of the policy's status (see the module docstring)."""
    e = explorer.exploration
    open_ = explorer.open
    alpha = ALPHA / max(1, len(open_))
    measured = []
    for model in e.candidates:
        r, s, c, b = explorer.measured(model)
        row: dict[str, Any] = {"model": model, "requests": len(r)}
        row["state"] = "dropped" if model in explorer.drops else "open"
        if model in explorer.drops:
            row["reason"] = explorer.drops[model].reason
            row["dropped_after"] = explorer.drops[model].after_items
        kept, lower, meets = _kept(r, s, explorer.required, alpha)
        row |= {"kept_accuracy": kept, "kept_accuracy_lower": lower}
        row |= dict(zip(("savings", "savings_ci"), _savings(c, b), strict=True))
        row["shadow_spend_usd"] = float(np.nansum(c))
        row["proven"] = bool(meets and model in open_ and (row["savings"] or 0) > 0)
        measured.append(row)
    ready = [r for r in measured if r["proven"] and r["requests"] >= REFIT_READY]
    return {
        "refit_ready": bool(ready),
        "baseline": e.baseline,
        "requirement": e.requirement,
        "required_share": explorer.required,
        "requests": len(explorer.tasks),
        "open": list(open_),
        "candidates": measured,
        "summary": _summary(explorer, measured),
    }


def _summary(explorer: Explorer, rows: list[dict[str, Any]]) -> str:
    e = explorer.exploration
    shown = [r for r in rows if r["proven"]]
    if shown:
        best = max(shown, key=lambda r: r["savings"])
        said = (
            f"a policy keeping >= {explorer.required:.0%} of {e.baseline} at "
            f"{best['savings']:.0%} less cost is proven on {best['requests']:,} of your "
            f"requests (bound {best['kept_accuracy_lower']:.1%}): serve {best['model']} "
            "in its place; "
        )
        if best["requests"] < REFIT_READY:
            return said + (
                f"a refit tests it on the requests it does not fit on, at least {MIN_PAIRS}: "
                f"about {REFIT_READY - best['requests']:,} more graded requests first"
            )
        return said + f"`tradeoff refit --policy {e.name} --promote` tests and promotes"
    if not explorer.open:
        return (
            f"every candidate was dropped: nothing cheaper than {e.baseline} meets "
            f'"{e.requirement}"; add candidates with `tradeoff explore {e.name} '
            f"--baseline {e.baseline} --candidates ...`"
        )
    if not explorer.tasks:
        return (
            f"no graded shadow answers yet: serve it with `tradeoff serve --policy {e.name} "
            "--shadow RATE`"
        )
    if explorer.required is None:
        return (
            f"{len(explorer.tasks):,} requests measured; the refit's test decides what they "
            f"prove (`tradeoff refit --policy {e.name}`)"
        )
    open_rows = [r for r in rows if r["state"] == "open"]
    best = max(open_rows, key=lambda r: (r["kept_accuracy_lower"] or 0.0, r["requests"]))
    kept, lower, n = best["kept_accuracy"], best["kept_accuracy_lower"] or 0.0, best["requests"]
    if kept is None or n == 0:
        return f"nothing proven yet: {best['model']} has no graded answer yet"
    said = (
        f"nothing proven yet: {best['model']} keeps {kept:.1%} of {e.baseline} on {n:,} "
        f"requests (bound {lower:.1%}, {explorer.required:.0%} required)"
    )
    if kept <= explorer.required:
        return said + "; below the requirement so far"
    more = math.ceil(n * ((kept - lower) / (kept - explorer.required)) ** 2) - n
    per = best["shadow_spend_usd"] / n if n else 0.0
    return said + f"; about {max(more, 1):,} more graded requests (~${more * per:.2g} of calls)"


def _kept(
    r: np.ndarray, s: np.ndarray, required: float | None, alpha: float
) -> tuple[float | None, float | None, bool]:
    """(kept accuracy, its anytime-valid lower bound at `alpha`, whether it meets `required`)."""
    if not len(r):
        return None, None, False
    monitor = Monitor(required, alpha=alpha)
    monitor.extend(r, s)
    reading = monitor.reading()
    proven = required is not None and reading.lower is not None and reading.lower >= required
    return reading.kept_accuracy, reading.lower, proven


def _savings(c: np.ndarray, b: np.ndarray) -> tuple[float | None, list[float] | None]:
    """1 - sum(c) / sum(b) and its 95% interval (the delta method on the ratio of means)."""
    if len(c) < 2 or not np.nansum(b) > 0:
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ratio = float(np.nansum(c) / np.nansum(b))
        spread = float(np.nanstd(c - ratio * b, ddof=1)) / float(np.nanmean(b))
    half = Z95 * spread / math.sqrt(len(c))
    return 1.0 - ratio, [1.0 - ratio - half, 1.0 - ratio + half]
