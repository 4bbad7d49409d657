"""Guarded promotion, and rollback.

`promotion_test(candidate, requirement, held_out, baseline)` is the acceptance test `tradeoff
fit` applies on its validation items, applied to traffic: the candidate is replayed on graded
traffic pairs it was not fitted on, against the baseline on the same pairs, and passes when
every constraint of the requirement holds at its one-sided 95% paired-bootstrap lower bound
(policies/replay/metrics.py), on at least `MIN_PAIRS` pairs. A candidate that would ask a
model on a held-out request where that model was not measured (traffic measures only the models
a request was routed or shadowed to) fails: nothing says how that answer would have scored. A
candidate that fails is recorded as a `rejected` version with the reason; the serving version
stays.

`promote` and `rollback` only append events (policies/versions.py); a proxy serving the name
picks the new serving version up on its next poll.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tradeoff.evals.errors import UsageError
from tradeoff.evals.store import Store
from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.verifiers import Verdicts
from tradeoff.policies.replay.metrics import Bootstrap, constraint_margin, summarize
from tradeoff.policies.replay.simulate import (
    Replay,
    Routes,
    policy_routes,
    replay,
    single_routes,
)
from tradeoff.policies.replay.tasks import task_groups
from tradeoff.policies.requirement import Constraint, Requirement
from tradeoff.policies.versions import (
    append_event,
    latest_version,
    promoted_versions,
    serving_all,
)

__all__ = ["MIN_PAIRS", "Verdict", "promote", "promotion_test", "rollback"]

MIN_PAIRS = 30


@dataclass
class Verdict:
    """The promotion test's result on held-out traffic."""

    passed: bool
    n: int
    reason: str
    margins: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "passed": self.passed,
                "n": self.n,
                "reason": self.reason,
                "lower_bound_margins": self.margins,
                "metrics": self.metrics,
            }
        )


def _finite(doc: Any) -> Any:
    """JSON-safe: NaN and infinities (a metric not recorded) become None."""
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_finite(v) for v in doc]
    if isinstance(doc, float) and not np.isfinite(doc):
        return None
    return doc


def promotion_test(
    candidate: Policy, requirement: Requirement, held_out: Outcomes, baseline: str, seed: int = 0
) -> Verdict:
    """Replay `candidate` on `held_out` traffic; see the module docstring.

    Fewer than MIN_PAIRS pairs suffice only when the candidate answers every one of them with
    the baseline itself: then it keeps the baseline's accuracy by definition, nothing to estimate.
    """
    if held_out.n == 0:
        return Verdict(False, 0, _too_few(0))
    verdicts = Verdicts(held_out) if held_out.responses is not None else None
    base_j = held_out.model_index(baseline)
    routes = policy_routes(candidate, held_out)
    mine = replay(held_out, routes, verdicts)
    blind = unmeasured(held_out, routes, mine)
    if blind.any():
        return Verdict(
            False,
            held_out.n,
            f"it asks a model on {int(blind.sum())} of the {held_out.n} held-out traffic pairs "
            "where that model was not measured; shadow the models it routes to first",
        )
    base = replay(held_out, single_routes(held_out.n, base_j))
    boot = Bootstrap.draw(held_out.n, seed)
    margins = {
        str(c): _per_task_margin(c, mine, base, held_out.tasks, seed)
        if c.per_task
        else constraint_margin(c, mine, base, boot)
        for c in requirement.constraints
    }
    metrics = summarize(mine, base, boot, held_out.models)
    failing = [k for k, m in margins.items() if not (np.isfinite(m) and m >= 0)]
    if failing:
        shown = ", ".join(f"{k} (lower-bound margin {margins[k]:.3g})" for k in failing)
        return Verdict(
            False,
            held_out.n,
            f"on {held_out.n} held-out traffic pairs it does not meet {shown} with 95% confidence",
            margins,
            metrics,
        )
    all_baseline = bool((mine.final == base_j).all())
    if held_out.n < MIN_PAIRS and not all_baseline:
        return Verdict(False, held_out.n, _too_few(held_out.n), margins, metrics)
    kept = metrics.get("accuracy_vs_baseline")
    shown = f"keeps {kept:.1%} of the baseline's accuracy" if kept is not None else "passes"
    if all_baseline:
        shown = f"answers all of them with the baseline {baseline}"
    return Verdict(
        True,
        held_out.n,
        f"on {held_out.n} held-out traffic pairs it {shown}; every constraint holds at its 95% "
        "lower bound",
        margins,
        metrics,
    )


def _per_task_margin(
    c: Constraint, mine: Replay, base: Replay, tasks: np.ndarray, seed: int
) -> float:
    """An `on every task` clause's margin: the lowest over the tasks, each on its own pairs (a
    task answered wholly by the baseline keeps a relative floor by definition)."""
    overall = replace(c, per_task=False)
    margin = np.inf
    for _, idx in task_groups(tasks):
        if c.baseline_holds and (mine.final[idx] == base.final[idx]).all():
            continue
        boot = Bootstrap.draw(len(idx), seed)
        m = constraint_margin(overall, mine.take(idx), base.take(idx), boot)
        margin = min(margin, m) if np.isfinite(m) else -np.inf
    return 0.0 if margin == np.inf else float(margin)


def unmeasured(outcomes: Outcomes, routes: Routes, done: Replay) -> np.ndarray:
    """(n,) whether the replayed plan asked, up to the answer it kept, a model with no outcome on
    the item (`Outcomes.capable` False)."""
    if outcomes.capable is None:
        return np.zeros(outcomes.n, dtype=bool)
    chain = routes.chain
    kept_at = np.argmax(chain == done.final[:, None], axis=1)
    asked = (np.arange(chain.shape[1])[None, :] <= kept_at[:, None]) & (chain >= 0)
    rows = np.arange(outcomes.n)[:, None]
    blind = ~outcomes.capable[rows, np.where(chain >= 0, chain, 0)]
    return (asked & blind).any(axis=1)


def _too_few(n: int) -> str:
    return (
        f"only {n} graded traffic pairs were held out of the refit (at least {MIN_PAIRS} are "
        "needed); let the proxy shadow more requests first"
    )


def promote(con: Any, name: str, version: int, detail: dict[str, Any]) -> int:
    """Make `version` serve (inside the caller's transaction); returns the new epoch."""
    return append_event(con, name, version, "promoted", detail)


def rollback(store: Store, name: str, to: int | None = None) -> tuple[int, int]:
    """Serve `to` again (default: the version that served before the current one).

    Returns (version rolled back, version serving now).
    """
    with store.transaction() as con:
        current = serving_all(con).get(name)
        if current is None:
            raise UsageError(f"no version of policy {name!r} is serving; nothing to roll back")
        promoted = promoted_versions(con, name)
        known = latest_version(con, name) or 0
        if to is None:
            earlier = [v for v in promoted if v != current.version]
            if not earlier:
                raise UsageError(
                    f"policy {name!r} has no earlier serving version than {current.version}; "
                    "name one with --to VERSION"
                )
            to = earlier[-1]
        elif not 1 <= to <= known:
            raise UsageError(
                f"policy {name!r} has no version {to}; `tradeoff policies` lists its versions"
            )
        elif to not in promoted:
            raise UsageError(
                f"version {to} of {name!r} never served, so there is nothing to roll back to; "
                "a candidate serves only through `tradeoff refit --promote` (which tests it)"
            )
        if to == current.version:
            raise UsageError(f"version {to} of {name!r} is already serving")
        append_event(con, name, current.version, "rolled_back", {"to": to})
        append_event(con, name, to, "promoted", {"by": "rollback", "from": current.version})
    return current.version, to
