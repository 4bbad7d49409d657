"""Cold start: from a policy that is only the team's current model to a proven, cheaper one,
from its production traffic alone.

`explore(store, name, baseline, candidates, requirement)` (`tradeoff explore`) stores version 1
of `name`, the single model `baseline`, serving, with the requirement, and an `explored` event
naming the candidates (policies/versions.py). A proxy serving `name` with `--shadow RATE` asks,
for each sampled request and after the client has its answer, every candidate still in the race
(router/loop/shadow.py), and grades each answer against the baseline's with the pair grader
(policies/loop/grading.py). Each graded answer is an outcome of the request's item in
`traffic-<name>` (policies/loop/traffic.py).

**The race** (`Explorer`) is adaptive evaluation's (`evals.adaptive.race.Race` and its
anytime-valid tests by betting), fed the shadowed requests in the order they reach it: a proxy's
own graded answers at once, other replicas' as it reads them from the store (the order depends on
timing, never on the answers, so the tests hold in it). A candidate is dropped once it is, with
95% confidence, of no use for the requirement (dominated, or below the floor on every task). A
dropped candidate gets no more shadow calls, so the shadow budget goes where the decision is
still open; and a proxy asks a candidate at most `EXPLORE_AHEAD` times ahead of the answers its
race has seen, so however slowly answers come back, a drop costs few calls more. A drop is
recorded in the store once (`adaptive_drops`, dataset `traffic-<name>`: the first process to
decide it records it; every process reads it, and the recorded one wins), so replicas make one
decision, and the refit leaves the candidate out as `fit` leaves out one adaptive evaluation
dropped. (Groups of small tasks are re-formed as tasks grow; that can only cost a drop, never what
a promotion must prove: the refit's own test decides that.)

`tradeoff refit --policy NAME --promote` fits on the traffic outcomes (policies/loop/refit.py).
Once a promoted version routes beyond its baseline, the open candidates are asked on
`LATER_SHARE` of the sampled requests only: a model that drifts, or a candidate added later
(`tradeoff explore NAME --candidates C` again), is still seen.

**What is proven so far** (`Explorer.entry`, in `tradeoff status`): for each open candidate,
serving it alone in place of the baseline, on the requests where both were measured: its kept
accuracy with the live monitor's anytime-valid lower bound (policies/loop/monitor.py; 95% split
over the open candidates) and its savings with a 95% interval. It is proven when the bound meets
the required share and it costs less.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeoff.evals.adaptive.drops import drops_in, record_drop
from tradeoff.evals.adaptive.race import Drop, Race
from tradeoff.evals.adaptive.run import requirement_rules
from tradeoff.evals.errors import UsageError
from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact, insert_artifact
from tradeoff.policies.families.base import create_policy
from tradeoff.policies.loop.monitor import ALPHA, Monitor
from tradeoff.policies.loop.traffic import explored_rows, traffic_dataset
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import (
    append_event,
    latest_events,
    latest_version,
    record_version,
    serving_all,
)

__all__ = [
    "EVENT",
    "EXPLORE_AHEAD",
    "LATER_SHARE",
    "Exploration",
    "Explorer",
    "explorations",
    "explore",
]

EVENT = "explored"
LATER_SHARE = 0.25  # of sampled requests, once a promoted version routes beyond the baseline
# Calls a proxy makes of a candidate ahead of the answers the race has read: a drop then costs
# at most this many calls more, however long answers take to reach the store and the race.
EXPLORE_AHEAD = 20
RUN_ID = "explore"
Z95 = 1.959964


@dataclass(frozen=True)
class Exploration:
    """What `tradeoff explore` recorded for a policy name."""

    name: str
    baseline: str
    candidates: tuple[str, ...]
    requirement: str
    version: int  # the version serving when it was recorded

    @property
    def models(self) -> list[str]:
        return [self.baseline, *self.candidates]


def explorations(con: Any, name: str | None = None) -> dict[str, Exploration]:
    """The latest exploration of every policy name (or of `name`)."""
    out = {}
    for policy, (version, detail) in latest_events(con, EVENT, name).items():
        out[policy] = Exploration(
            policy,
            str(detail["baseline"]),
            tuple(detail["candidates"]),
            str(detail["requirement"]),
            version,
        )
    return out


def explore(
    store: Store, name: str, baseline: str, candidates: list[str], requirement: str
) -> tuple[Exploration, bool]:
    """Store version 1 of `name` (the baseline alone, serving) and its exploration; for a name
    already explored with this baseline, add the candidates. Returns (it, whether new)."""
    req = parse_requirement(requirement)
    floors, dominance = requirement_rules(str(req))
    if not floors and not dominance:
        raise UsageError(
            f'"{req}" gives exploring nothing to drop candidates by; give an accuracy floor '
            '(e.g. "accuracy >= 95% of baseline") or only accuracy and cost'
        )
    wanted = [c for c in dict.fromkeys(c.strip() for c in candidates) if c and c != baseline]
    if not wanted:
        raise UsageError("--candidates: name at least one model other than the baseline")
    with store.transaction() as con:
        known = latest_version(con, name)
        earlier = explorations(con, name).get(name)
        serving = serving_all(con).get(name)
        if known is not None and (earlier is None or earlier.baseline != baseline):
            raise UsageError(
                f"policy {name!r} already exists"
                + ("" if earlier is None else f" exploring against {earlier.baseline}")
                + "; explore under a new name"
            )
        if earlier is not None and serving is not None:
            everyone = list(dict.fromkeys([*earlier.candidates, *wanted]))
            found = Exploration(name, baseline, tuple(everyone), str(req), serving.version)
            append_event(con, name, serving.version, EVENT, _detail(found))
            return found, False
        artifact = PolicyArtifact.from_policy(
            name, create_policy("single", {"model": baseline}), requirement=str(req),
            baseline=baseline,
        )  # fmt: skip
        pid = insert_artifact(con, artifact)
        version = record_version(con, name, pid, "explore", detail={"candidates": wanted})
        append_event(con, name, version, "promoted", {"by": "explore"})
        found = Exploration(name, baseline, tuple(wanted), str(req), version)
        append_event(con, name, version, EVENT, _detail(found))
    return found, True


def _detail(e: Exploration) -> dict[str, Any]:
    return {"baseline": e.baseline, "candidates": list(e.candidates), "requirement": e.requirement}


def _required(requirement: str) -> float | None:
    req = parse_requirement(requirement)
    shares = [
        c.value for c in req.constraints if c.metric == "accuracy" and c.relative and c.lower_bound
    ]
    return max(shares) if shares else None


class Explorer:
    """One explored policy's race (see the module docstring). A proxy `record`s its own graded
    answers as they come (its race sees them at once) and `refresh`es from the store (every
    replica's, and the drops recorded); `decide` runs the race and records new drops."""

    def __init__(self, exploration: Exploration) -> None:
        self.exploration = exploration
        self.models = exploration.models
        self.floors, self.dominance = requirement_rules(exploration.requirement)
        self.required = _required(exploration.requirement)
        self.seq = 0  # the last pair read from the store
        self.ids: dict[str, int] = {}  # request id -> row
        self.tasks: list[str] = []
        self.drops: dict[str, Drop] = {}
        self.unread = 0  # rows added since the last decision
        self._score = np.full((0, len(self.models)), np.nan)
        self._cost = np.full((0, len(self.models)), np.nan)
        self._answered: dict[str, int] = {}
        self._lock = threading.Lock()  # record (the event loop) vs refresh and decide (threads)
        self._deciding = threading.Lock()  # one decision at a time
        self._unrecorded: list[Drop] = []  # decided here, not in the store yet (it was away)

    @property
    def name(self) -> str:
        return self.exploration.name

    @property
    def open(self) -> tuple[str, ...]:
        """The candidates still in the race (the ones shadowing asks)."""
        return tuple(c for c in self.exploration.candidates if c not in self.drops)

    def record(
        self, request_id: str, task: str, answers: dict[str, tuple[float, float | None]]
    ) -> None:
        """This proxy's graded answers to one request: {model: (score, cost)}, the baseline's
        among them."""
        with self._lock:
            self._add([(None, request_id, task, m, sc, c) for m, (sc, c) in answers.items()])

    def refresh(self, store: Store, *, decide: bool = True) -> list[Drop]:
        """Read the pairs stored since the last read (other replicas' answers) and the recorded
        drops; with `decide`, then `decide`. Readers such as `tradeoff status` pass
        `decide=False`: they show what was recorded."""
        with store.connect() as con:
            rows = explored_rows(con, self.name, self.models, self.seq)
            recorded = drops_in(con, traffic_dataset(self.name))
        with self._lock:
            self._merge(recorded)
            if rows:
                self._add(rows)
        return self.decide(store) if decide else []

    def decide(self, store: Store) -> list[Drop]:
        """Run the race over every answer read so far and record what it drops (the first
        process to record a drop decides it). Returns the new drops."""
        if not self._deciding.acquire(blocking=False):
            return []  # a decision is running: it will see these rows or the next one will
        try:
            new: list[Drop] = []
            with self._lock:
                unread, self.unread = self.unread, 0
                score, cost, tasks = self._score.copy(), self._cost.copy(), list(self.tasks)
                drops = dict(self.drops)
            if unread:
                new = self._race(score, cost, tasks, drops)
            with self._lock:
                for drop in new:
                    self.drops.setdefault(drop.model, drop)
                self._unrecorded += new
            if self._unrecorded:
                dataset = traffic_dataset(self.name)
                for drop in self._unrecorded:
                    record_drop(
                        store, dataset, drop, "", self.exploration.requirement, RUN_ID, first=True
                    )
                self._unrecorded = []
                with store.connect() as con:
                    recorded = drops_in(con, dataset)
                with self._lock:
                    self._merge(recorded)
            return new
        finally:
            self._deciding.release()

    def _merge(self, recorded: dict[str, Drop]) -> None:
        """The recorded drops win over this process's own (another replica decided first)."""
        mine = {m: d for m, d in self.drops.items() if m not in recorded}
        self.drops = {m: d for m, d in recorded.items() if m in self.exploration.candidates}
        self.drops |= mine

    def _add(self, rows: list[tuple[Any, ...]]) -> None:
        """Rows (seq or None, request id, task, model, score, cost) of requests not seen yet."""
        column = {m: j for j, m in enumerate(self.models)}
        for row in rows:
            if row[0] is not None:
                self.seq = max(self.seq, int(row[0]))
        known = set(self.ids)
        rows = [r for r in rows if r[1] not in known]
        fresh = list(dict.fromkeys(r[1] for r in rows))
        if not fresh:
            return
        tasks = {r[1]: str(r[2] or "") for r in rows}
        start = len(self.tasks)
        for k, request in enumerate(fresh):
            self.ids[request] = start + k
            self.tasks.append(tasks[request])
        grow = np.full((len(fresh), len(self.models)), np.nan)
        self._score = np.concatenate([self._score, grow])
        self._cost = np.concatenate([self._cost, grow.copy()])
        for _, request, _, model, score, cost in rows:
            i, j = self.ids[request], column[model]
            self._score[i, j] = 0.0 if score is None else float(score)
            self._cost[i, j] = 0.0 if cost is None else float(cost)
        counts = (~np.isnan(self._score)).sum(axis=0)
        self._answered = {m: int(counts[j]) for m, j in column.items()}
        self.unread += len(fresh)

    def _race(
        self, score: np.ndarray, cost: np.ndarray, tasks: list[str], drops: dict[str, Drop]
    ) -> list[Drop]:
        """One round of the race over the requests so far, in the order they were read."""
        rows = np.flatnonzero(~np.isnan(score[:, 0]))  # the baseline answered
        if not len(rows) or all(c in drops for c in self.exploration.candidates):
            return []
        race = Race(
            [str(i) for i in range(len(rows))],
            [tasks[i] for i in rows],
            self.models,
            baseline=self.exploration.baseline,
            floors=self.floors,
            dominance=self.dominance,
            order=np.arange(len(rows)),
        )
        race.score[:, :, 0] = score[rows]
        race.cost[:, :, 0] = cost[rows]
        race.active = [m for m in self.models if m not in drops]
        race.drops = list(drops.values())
        race.next_round(len(rows))
        return race.close_round()

    def answered(self, model: str) -> int:
        """Graded answers of `model` the race has read."""
        return self._answered.get(model, 0)

    # -- what is proven so far -----------------------------------------------------------

    # -- what is proven so far -----------------------------------------------------------
    def measured(self, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(candidate scores, baseline scores, candidate costs, baseline costs) on the requests
        where both answered, in the order read."""
        j = self.models.index(model)
        with self._lock:
            score, cost = self._score, self._cost
        both = ~np.isnan(score[:, j]) & ~np.isnan(score[:, 0])
        return score[both, j], score[both, 0], cost[both, j], cost[both, 0]

    def entry(self) -> dict[str, Any]:
        """The `explore` object of the policy's status (see the module docstring)."""
        e = self.exploration
        open_ = self.open
        alpha = ALPHA / max(1, len(open_))
        measured = []
        for model in e.candidates:
            r, s, c, b = self.measured(model)
            row: dict[str, Any] = {"model": model, "requests": len(r)}
            row["state"] = "dropped" if model in self.drops else "open"
            if model in self.drops:
                row["reason"] = self.drops[model].reason
                row["dropped_after"] = self.drops[model].after_items
            kept, lower, proven = _kept(r, s, self.required, alpha)
            row |= {"kept_accuracy": kept, "kept_accuracy_lower": lower}
            row |= dict(zip(("savings", "savings_ci"), _savings(c, b), strict=True))
            row["shadow_spend_usd"] = float(np.nansum(c))
            row["proven"] = bool(proven and model in open_ and (row["savings"] or 0) > 0)
            measured.append(row)
        return {
            "baseline": e.baseline,
            "requirement": e.requirement,
            "required_share": self.required,
            "requests": len(self.tasks),
            "open": list(open_),
            "candidates": measured,
            "summary": self._summary(measured),
        }

    def _summary(self, rows: list[dict[str, Any]]) -> str:
        e = self.exploration
        proven = [r for r in rows if r["proven"]]
        if proven:
            best = max(proven, key=lambda r: r["savings"])
            return (
                f"a policy keeping >= {self.required:.0%} of {e.baseline} at "
                f"{best['savings']:.0%} less cost is proven on {best['requests']:,} of your "
                f"requests (bound {best['kept_accuracy_lower']:.1%}): serve {best['model']} "
                f"in its place; `tradeoff refit --policy {e.name} --promote` tests and promotes"
            )
        if not self.open:
            return (
                f"every candidate was dropped: nothing cheaper than {e.baseline} meets "
                f'"{e.requirement}"; add candidates with `tradeoff explore {e.name} '
                f"--baseline {e.baseline} --candidates ...`"
            )
        if not self.tasks:
            return (
                f"no graded shadow answers yet: serve it with `tradeoff serve --policy {e.name} "
                "--shadow RATE`"
            )
        if self.required is None:
            return (
                f"{len(self.tasks):,} requests measured; the refit's test decides what they "
                f"prove (`tradeoff refit --policy {e.name}`)"
            )
        open_rows = [r for r in rows if r["state"] == "open"]
        best = max(open_rows, key=lambda r: (r["kept_accuracy_lower"] or 0.0, r["requests"]))
        kept, lower, n = best["kept_accuracy"], best["kept_accuracy_lower"] or 0.0, best["requests"]
        if kept is None or n == 0:
            return f"nothing proven yet: {best['model']} has no graded answer yet"
        said = (
            f"nothing proven yet: {best['model']} keeps {kept:.1%} of {e.baseline} on {n:,} "
            f"requests (bound {lower:.1%}, {self.required:.0%} required)"
        )
        if kept <= self.required:
            return said + "; below the requirement so far"
        more = math.ceil(n * ((kept - lower) / (kept - self.required)) ** 2) - n
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
