"""Live vs promised, per served policy: `Watch` (one version under watch) and `loop_status`.

The proxy keeps one `Watch` per served policy and feeds it as it serves; `tradeoff status`,
`GET /tradeoff/status` and the dashboard render the same JSON:

```json
{"policies": [{"name": "support", "version": 3, "state": "ok",
  "requirement": "accuracy >= 95% of baseline; minimize cost", "required_share": 0.95,
  "baseline": "gpt-4o", "promised": {"kept_accuracy": 0.99, "kept_accuracy_ci": [0.96, 1.02],
  "savings": 0.71, "savings_ci": [0.69, 0.73], "n": 500},
  "requests": 1200, "shadow_pairs": 310, "kept_accuracy": 0.984,
  "kept_accuracy_ci": [0.955, 1.0], "savings": 0.69, "shadow_spend_usd": 0.41,
  "since": "2026-01-01T00:00:00", "change": null}]}
```

`promised` is what `tradeoff fit` measured on held-out items; `kept_accuracy` and its interval
are the monitor's (policies/loop/monitor.py: one-sided 95% bounds, anytime-valid; after an
alarm they cover the pairs since the detected change, which `change` locates). `requests` and
`kept_accuracy_ci` is null before the first pair; its upper end is null while nothing above
the estimate is excluded yet (the grid ends at 1.5). `reviews` (only once a request of the policy went to a human reviewer): pending and done
reviews and the time to review, `{"pending", "done", "time_to_review_s": {"median", "p95"}}`.
`savings` (1 - cost / what the baseline
would have charged for the same tokens, over the
version's answered requests with both prices known; a request served by the baseline saves
nothing) count from the version's promotion (`since`); policies served from a file that was
never promoted count every logged request of their name.

A policy `tradeoff explore` named candidates for has an `explore` object besides
(policies/loop/proven.py): the open and dropped candidates (with why), each
candidate's kept accuracy, bound and savings on the requests both answered, and `summary`, the
sentence saying what is proven so far or what is missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact, artifact_from_dict
from tradeoff.policies.loop.explore import explorations
from tradeoff.policies.loop.explorer import Explorer
from tradeoff.policies.loop.monitor import Monitor
from tradeoff.policies.loop.proven import proven
from tradeoff.policies.loop.reviews import review_counts
from tradeoff.policies.loop.traffic import epoch_pairs, load_pairs
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import serving_all

__all__ = ["Watch", "kept_over_time", "load_watch", "loop_status", "required_share"]


def required_share(artifact: PolicyArtifact) -> float | None:
    """R of the requirement's `accuracy >= R of baseline` clause (the largest, if several)."""
    if not artifact.requirement:
        return None
    try:
        req = parse_requirement(artifact.requirement)
    except Exception:  # a hand-edited file: nothing to monitor rather than a crash
        return None
    shares = [
        c.value for c in req.constraints if c.metric == "accuracy" and c.relative and c.lower_bound
    ]
    return max(shares) if shares else None


@dataclass
class Watch:
    """One served policy version: its monitor and the counters since its promotion, read from
    the store. Every reader (each replica, `tradeoff status`) feeds the monitor the same pairs
    in the same order (`seq`), so all agree on the state."""

    name: str
    version: int | None
    epoch: int
    artifact: PolicyArtifact
    since: datetime | None
    monitor: Monitor = field(init=False)
    requests: int = 0
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0
    # Human reviews of the policy's requests (policies/loop/reviews.py); None: none yet.
    reviews: dict[str, Any] | None = None
    shadow_spend_usd: float = 0.0
    seq: int | None = None  # the last pair read (its `seq` in loop_pairs); None: none yet

    def __post_init__(self) -> None:
        self.monitor = Monitor(required_share(self.artifact))

    @property
    def policy_id(self) -> str:
        return self.artifact.policy_id

    @property
    def state(self) -> str:
        return self.monitor.state

    @property
    def pairs(self) -> int:
        return self.monitor.n

    def refresh(self, store: Store) -> tuple[str, str]:
        """Feed the monitor the pairs stored since the last read; (state before, after)."""
        before = self.monitor.state
        policy_id = None if self.epoch else self.artifact.policy_id
        routed, baseline, spend, self.seq = load_pairs(
            store, self.name, self.epoch, policy_id, after=self.seq
        )
        self.monitor.extend(routed, baseline)
        self.shadow_spend_usd += spend
        return before, self.monitor.state

    def count_requests(self, store: Store) -> None:
        """Count the version's answered requests and their cost (every replica's)."""
        where = "policy = ? AND status = 200" + (" AND created_at >= ?" if self.since else "")
        with store.connect() as con:
            row = con.execute(
                "SELECT count(*), sum(CASE WHEN baseline_cost_usd IS NOT NULL THEN cost_usd END), "
                "sum(CASE WHEN cost_usd IS NOT NULL THEN baseline_cost_usd END) "
                f"FROM requests WHERE {where}",
                [self.name, self.since] if self.since else [self.name],
            ).fetchone()
            reviews = review_counts(con, self.name)
        if row is not None:
            self.requests = int(row[0] or 0)
            self.cost_usd, self.baseline_cost_usd = float(row[1] or 0.0), float(row[2] or 0.0)
        self.reviews = reviews if reviews["pending"] or reviews["done"] else None

    def entry(self) -> dict[str, Any]:
        """This policy's object in the status JSON (see the module docstring)."""
        reading = self.monitor.reading()
        metrics = self.artifact.metrics
        savings = (
            1.0 - self.cost_usd / self.baseline_cost_usd if self.baseline_cost_usd > 0 else None
        )
        change = None
        if reading.alarm_at is not None:
            change = {
                "alarm_at_pair": reading.alarm_at,
                "since_pair": reading.change_at,
                "pairs_since": reading.window_pairs,
            }
        return {
            "name": self.name,
            "version": self.version,
            "state": reading.state,
            "requirement": self.artifact.requirement,
            "required_share": self.monitor.required,
            "baseline": self.artifact.baseline,
            "promised": {
                "kept_accuracy": metrics.get("accuracy_vs_baseline"),
                "kept_accuracy_ci": metrics.get("accuracy_vs_baseline_ci"),
                "savings": metrics.get("savings_vs_baseline"),
                "savings_ci": metrics.get("savings_ci"),
                "n": metrics.get("n"),
            },
            "requests": self.requests,
            "shadow_pairs": reading.pairs,
            "kept_accuracy": reading.kept_accuracy,
            "kept_accuracy_ci": None if reading.lower is None else [reading.lower, reading.upper],
            "savings": savings,
            "shadow_spend_usd": round(self.shadow_spend_usd, 10),  # summed in any order
            "since": self.since.isoformat() if self.since else None,
            "change": change,
            **({"reviews": self.reviews} if self.reviews else {}),
        }


def load_watch(
    store: Store,
    name: str,
    version: int | None,
    epoch: int,
    artifact: PolicyArtifact,
    since: datetime | None,
) -> Watch:
    """A watch rebuilt from the store: the epoch's pairs replayed, its requests counted."""
    watch = Watch(name, version, epoch, artifact, since)
    watch.refresh(store)
    watch.count_requests(store)
    return watch


def _unversioned(store: Store, versioned: set[str]) -> list[tuple[str, PolicyArtifact]]:
    """Policies served from files (epoch 0): the latest artifact each was graded under."""
    with store.connect() as con:
        # Grouped by policy_id, not by the JSON artifact: PostgreSQL cannot compare JSON.
        rows = con.execute(
            "SELECT l.policy, CAST(p.artifact AS VARCHAR), l.last FROM ("
            "SELECT policy, policy_id, max(graded_at) AS last FROM loop_pairs WHERE epoch = 0 "
            "GROUP BY policy, policy_id) l JOIN policies p ON p.policy_id = l.policy_id "
            "ORDER BY l.policy, l.last DESC"
        ).fetchall()
    out: dict[str, PolicyArtifact] = {}
    for name, doc, _ in rows:
        if name not in versioned and name not in out:
            out[name] = artifact_from_dict(json.loads(doc) if isinstance(doc, str) else doc)
    return sorted(out.items())


def loop_status(store: Store, names: list[str] | None = None) -> dict[str, Any]:
    """The status JSON of every served policy (or of `names`), from the store alone."""
    from tradeoff.policies.versions import resolve

    with store.connect() as con:
        current = serving_all(con)
    watches = []
    for name, serving in current.items():
        artifact = resolve(store, f"{name}@{serving.version}").artifact
        watches.append(
            load_watch(store, name, serving.version, serving.epoch, artifact, serving.since)
        )
    for name, artifact in _unversioned(store, set(current)):
        watches.append(load_watch(store, name, artifact.policy_version, 0, artifact, None))
    wanted = [w for w in watches if names is None or w.name in names]
    entries = [w.entry() for w in sorted(wanted, key=lambda w: w.name)]
    with store.connect() as con:
        found = explorations(con)
    for entry in entries:
        if entry["name"] in found:
            explorer = Explorer(found[entry["name"]])
            explorer.refresh(store, decide=False)  # a reader shows the drops recorded
            entry["explore"] = proven(explorer)
    return {"policies": entries}


def kept_over_time(
    store: Store, name: str, epoch: int, required: float | None, step: int = 50
) -> list[dict[str, Any]]:
    """The monitor's reading after every `step` pairs of one epoch (and after the last), with
    the time of that pair: the series a "live vs promised over time" chart draws."""
    with store.connect() as con:
        rows = [(r[1], r[2], r[4]) for r in epoch_pairs(con, name, epoch)]
    monitor = Monitor(required)
    series = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        monitor.extend(np.array([r[0] for r in chunk]), np.array([r[1] for r in chunk]))
        reading = monitor.reading()
        series.append(
            {
                "pairs": reading.pairs,
                "graded_at": chunk[-1][2],
                "state": reading.state,
                "kept_accuracy": reading.kept_accuracy,
                "lower": reading.lower,
                "upper": reading.upper,
            }
        )
    return series
