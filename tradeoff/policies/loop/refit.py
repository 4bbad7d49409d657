"""`refit_policy`: fit a new version of a served policy on its dataset plus its traffic, and
promote it only if it passes the promotion test on traffic it was not fitted on.

The data (materialised as the dataset `refit-<name>`, replaced on each refit, so `tradeoff
replay --dataset refit-<name>` shows what the refit saw):
- the graded traffic pairs of the serving version's epoch, in grading order; when its monitor
  has raised `violated` (replayed from the stored pairs, or recorded by a proxy as an event),
  only the pairs since the detected change (the pairs before describe a regime the monitor has
  rejected);
- the items of the dataset the serving version was fitted on, restricted to the models the
  traffic has evidence on: the models the policy routed those requests to, the baseline, and
  the candidates `tradeoff explore` named that the race has not dropped (their shadow answers,
  policies/loop/explore.py). A refit chooses among models with live evidence; a model never
  served or shadowed has none.
On traffic items the baseline's answer is the reference (policies/loop/grading.py), on the
dataset's items the recorded reference: both are "accuracy against a reference".

A traffic item holds outcomes of the models its request was routed and shadowed to, not of every
model: a model without one is *not measured* there (`load_outcomes(not_measured=True)`, as
adaptive evaluation's unmeasured items), so the item stays in the data and no candidate may route
it to that model (the fit's acceptance and the promotion test both refuse one that would).

The fit is `policies.fit.fitting.fit_policy` unchanged (its own train/validation/test split and
acceptance at the lower bound). The promotion test (policies/loop/promote.py) then replays the
candidate on the traffic items outside the fit's train split. Either way the candidate is a new
version in the store: `promoted`, `rejected` with the reason, or a candidate when `promote` was
not asked for.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradeoff.evals.adaptive.drops import dropped_models
from tradeoff.evals.errors import StoreBusyError, TradeoffError, UsageError
from tradeoff.evals.store import Store
from tradeoff.evals.store.outcomes import copy_rows, count_items, delete_rows, record_dataset
from tradeoff.policies.artifact import insert_artifact
from tradeoff.policies.data import load_outcomes
from tradeoff.policies.human import fitted_reviewers, with_fitted_reviewers
from tradeoff.policies.loop.explore import explorations
from tradeoff.policies.loop.monitor import Monitor
from tradeoff.policies.loop.promote import Verdict, promote, promotion_test
from tradeoff.policies.loop.status import required_share
from tradeoff.policies.loop.traffic import epoch_pairs, traffic_dataset
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import (
    StoredPolicy,
    alarms,
    append_event,
    record_version,
    resolve,
)

__all__ = ["RefitResult", "refit_policy"]


@dataclass
class RefitResult:
    """What one refit did, for the CLI and the scheduler's log."""

    name: str
    serving: int
    version: int | None = None  # the candidate's version; None when no candidate was fitted
    promoted: bool = False
    reason: str = ""
    verdict: Verdict | None = None
    fit: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serving_before": self.serving,
            "candidate_version": self.version,
            "promoted": self.promoted,
            "reason": self.reason,
            "test": self.verdict.to_dict() if self.verdict else None,
            "fit": self.fit,
            "data": self.data,
        }


def _regime(store: Store, current: StoredPolicy) -> tuple[list[str], set[str], int]:
    """The epoch's traffic pairs since the detected change, if any: (ids, routed models, start)."""
    name, epoch = current.artifact.name, current.epoch
    assert epoch is not None  # refit_policy refits only a serving version
    with store.connect() as con:
        rows = epoch_pairs(con, name, epoch)
        details = alarms(con, name, current.version, epoch)
    if not rows:
        return [], set(), 0
    monitor = Monitor(required_share(current.artifact))
    monitor.extend(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    start = monitor.change_at or 0  # set only once violated
    # The proxy records its alarm as an event at once, its pairs in batches: a refit soon after
    # an alarm may see the event before the pairs that rang it, and must not refit on the old
    # regime then.
    for detail in details:
        start = max(start, int(detail.get("since_pair") or 0))
    kept = rows[start:]
    return [r[0] for r in kept], {r[3] for r in kept}, start


def _explored(store: Store, name: str) -> set[str]:
    """The candidates `tradeoff explore` named for `name` and the race has not dropped."""
    with store.connect() as con:
        found = explorations(con, name).get(name)
    if found is None:
        return set()
    dropped = dropped_models(store, traffic_dataset(name))
    return {c for c in found.candidates if c not in dropped}


def _materialize(
    store: Store, dataset: str, source: str | None, traffic: str, ids: list[str], models: list[str]
) -> tuple[int, int]:
    """Write the refit dataset; return (items from the source dataset, traffic items)."""
    with store.transaction() as con:
        delete_rows(con, dataset)
        record_dataset(
            con, dataset, "refit", description=f"refit data: {source or 'no dataset'} + {traffic}"
        )
        if source:
            copy_rows(con, dataset, source, models=models)
        from_source = count_items(con, dataset)
        copy_rows(con, dataset, traffic, models=models, item_ids=ids)
        total = count_items(con, dataset)
    return from_source, total - from_source


def refit_policy(
    store: Store, name: str, *, promote_it: bool = False, seed: int = 0, n_trials: int = 20
) -> RefitResult:
    """Refit the serving version of `name`; see the module docstring. One refit of a name runs
    at a time across every process on the store (replicas each refitting on a schedule): a
    second one meanwhile raises StoreBusyError at once."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(store.lock(f"refit:{name}", timeout_s=0))
        except StoreBusyError:
            raise StoreBusyError(
                f"another refit of {name!r} is running on store {store}; let it finish"
            ) from None
        return _refit_policy(store, name, promote_it=promote_it, seed=seed, n_trials=n_trials)


def _refit_policy(
    store: Store, name: str, *, promote_it: bool, seed: int, n_trials: int
) -> RefitResult:
    from tradeoff.policies.fit.fitting import fit_policy
    from tradeoff.policies.fit.options import FitOptions

    current = resolve(store, name)
    if current.epoch is None:
        raise UsageError(f"no version of {name!r} is serving; refit works on a serving version")
    art = current.artifact
    if not art.requirement or not art.baseline:
        raise UsageError(
            f"policy {name!r} version {current.version} names no requirement and baseline to "
            "refit against; fit it with `tradeoff fit --require ... --baseline ...`"
        )
    result = RefitResult(name, current.version)
    ids, routed, since = _regime(store, current)
    models = sorted(routed | {art.baseline} | _explored(store, name))
    dataset = f"refit-{name}"
    n_source, n_traffic = _materialize(
        store, dataset, art.dataset, traffic_dataset(name), ids, models
    )
    result.data = {
        "dataset": dataset,
        "source_dataset": art.dataset,
        "source_items": n_source,
        "traffic_pairs": n_traffic,
        "since_pair": since,
        "models": models,
    }
    if n_traffic == 0:
        result.reason = (
            f"no graded traffic since version {current.version} was promoted; serve it with "
            "`tradeoff serve --shadow RATE` first"
        )
        return result
    # The human tiers the serving policy was fitted with stay candidates (policies/human.py).
    reviewers = fitted_reviewers(art)
    try:
        report = fit_policy(
            store,
            FitOptions(
                dataset,
                art.requirement,
                baseline=art.baseline,
                seed=seed,
                n_trials=n_trials,
                name=name,
                save=False,
                not_measured=True,
                reviewers=reviewers,
            ),
        )
    except TradeoffError as exc:
        result.reason = f"the refit found no candidate: {exc}"
        return result
    assert report.artifact is not None
    candidate = report.artifact
    result.fit = {
        "family": report.family,
        "description": report.description,
        "sentence": report.sentence(),
        "n_fit": report.n_fit,
    }
    outcomes = load_outcomes(store, dataset, with_responses=True, not_measured=True)
    outcomes = with_fitted_reviewers(outcomes, art)
    fitted, traffic = set(report.fit_item_ids), set(ids)
    held = np.flatnonzero([i in traffic and i not in fitted for i in outcomes.item_ids])
    verdict = promotion_test(
        candidate.policy(),
        parse_requirement(art.requirement),
        outcomes.subset(held),
        art.baseline,
        seed,
    )
    result.verdict = verdict
    detail = {
        "refit_of": current.version,
        "data": result.data,
        "fit": result.fit,
        "test": verdict.to_dict(),
    }
    with store.transaction() as con:
        pid = insert_artifact(con, candidate)
        version = record_version(con, name, pid, "refit", detail=detail, parent=current.version)
        result.version = version
        if not verdict.passed:
            append_event(con, name, version, "rejected", {"reason": verdict.reason})
        elif promote_it:
            promote(con, name, version, {"by": "refit", "test": verdict.to_dict()})
            result.promoted = True
    result.reason = verdict.reason
    return result
