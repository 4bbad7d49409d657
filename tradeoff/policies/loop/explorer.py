"""`Explorer`: the race of one explored policy's candidates, in a proxy and in `tradeoff status`
(policies/loop/explore.py says what exploring is and why it is valid).

A proxy `record`s its own graded answers as they come, so its race sees them at once, and
`refresh`es from the store: other replicas' answers (`traffic-<name>` outcomes, in the order of
their pairs) and the drops recorded. `decide` runs adaptive evaluation's race
(`evals.adaptive.race.Race`) over every answer so far, in the order they arrived, and records
what it drops in `adaptive_drops` (dataset `traffic-<name>`), the first process's decision
standing. A reader (`tradeoff status`) refreshes without deciding.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tradeoff.evals.adaptive.drops import drops_in, record_drop
from tradeoff.evals.adaptive.race import Drop, Race
from tradeoff.evals.adaptive.run import requirement_rules
from tradeoff.evals.store import Store
from tradeoff.policies.loop.explore import Exploration
from tradeoff.policies.loop.traffic import explored_rows, traffic_dataset
from tradeoff.policies.requirement import parse_requirement

__all__ = ["Explorer"]

RUN_ID = "explore"


def _required(requirement: str) -> float | None:
    req = parse_requirement(requirement)
    shares = [
        c.value for c in req.constraints if c.metric == "accuracy" and c.relative and c.lower_bound
    ]
    return max(shares) if shares else None


class Explorer:
    """One explored policy's race; see the module docstring."""

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
