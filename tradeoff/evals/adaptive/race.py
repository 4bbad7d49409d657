"""The race: which candidates still deserve calls, decided after every round of items.

Items are visited in one seeded order, stratified by task so every round covers the tasks in
proportion. A round runs every active candidate on the next batch of items; then each active
candidate (worst first) is dropped once it is, with confidence, of no use to a policy that must
meet the requirement, in the two senses the product uses:

- *dominated*: another active candidate is more accurate over the items measured so far, at no
  higher mean cost per call, and on no task does the candidate look like the best choice (by
  point estimates, no other active candidate is as accurate there at no higher cost). The first
  part is a statement with confidence; the second only keeps candidates longer: one that may be
  a per-task table's pick for some task (or that has a task with fewer than `MIN_TASK_ITEMS`
  items measured yet) keeps being measured until the data says otherwise.
  Used only when the requirement constrains nothing but accuracy and cost (a dominated model
  may still be the fast or the consistent one). With `by_task` the candidate must instead be,
  with confidence, dominated on every task (see below): a per-task table can then never have
  used it, but near-ties on any one task keep it, so much less is saved.
- *below the floor on every task*: on each task its accuracy is under an accuracy floor of the
  requirement (`accuracy >= 0.8`, or `accuracy >= 95% of baseline` against the baseline's
  accuracy on the same items): no per-task choice of it can meet the floor. Tasks with fewer
  than `MIN_GROUP` items are judged together, as no test can say anything about three items.

Confidence. Each statement is an anytime-valid test by betting (`evals.adaptive.betting`) on
per-item differences of scores, so looking after every round costs nothing. "On every task"
needs a rejection on each task: an intersection-union test, no correction across tasks. The
tests of one candidate (its floors and one per rival) and the candidates are Bonferroni-
corrected, so the chance that a race ever makes one false statement is at most 1 - confidence.
Per-call cost is compared by its mean: prices are configuration and token counts vary little
next to right/wrong answers, and a wrong cost call can only make the kept set costlier, never
unable to meet the requirement. What dropping candidates costs the fitted policy is measured
on held-out items by `benchmarks/bench_adaptive.py`.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from tradeoff.evals.adaptive.betting import crossing
from tradeoff.evals.summary import wilson

MIN_GROUP = 30  # tasks with fewer items are judged together
SMALL_TASKS = "(small tasks)"
MIN_TASK_ITEMS = 10  # a task tells whether a candidate looks best there from this many items


@dataclass(frozen=True)
class Floor:
    """`accuracy >= value`, or `accuracy >= value x the baseline's` when relative."""

    value: float
    relative: bool
    text: str


@dataclass(frozen=True)
class Drop:
    model: str
    after_items: int  # items of the run order it was measured on
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "after_items": self.after_items, "reason": self.reason}


def stratified_order(tasks: list[str], seed: int) -> np.ndarray:
    """Item positions in a seeded random order that interleaves tasks in proportion."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(tasks, dtype=object)
    keys = np.empty(len(labels))
    for task in sorted(set(tasks)):
        where = np.flatnonzero(labels == task)
        rank = rng.permutation(len(where))
        keys[where] = (rank + rng.random(len(where))) / len(where)
    return np.argsort(keys, kind="stable")


class Race:
    """The state of one adaptive evaluation; `record` outcomes, `close_round`, read `drops`."""

    def __init__(
        self,
        item_ids: list[str],
        tasks: list[str],
        models: list[str],
        *,
        baseline: str | None,
        floors: tuple[Floor, ...],
        dominance: bool,
        by_task: bool = False,
        samples: int = 1,
        confidence: float = 0.95,
        seed: int = 0,
        min_group: int = MIN_GROUP,
        order: np.ndarray | None = None,
    ) -> None:
        """`order`: the items' positions in the order they are measured (default: seeded and
        stratified by task); a stream of items arriving one by one (the loop's shadowed
        requests, `policies.loop.explore`) gives its arrival order, as the tests must see it."""
        if baseline is not None and baseline not in models:
            raise ValueError("the baseline must be one of the models")
        self.item_ids, self.models = list(item_ids), list(models)
        self.position = {item: i for i, item in enumerate(self.item_ids)}
        self.baseline, self.floors = baseline, floors
        self.dominance, self.by_task = dominance, by_task
        self.order = stratified_order(tasks, seed) if order is None else np.asarray(order)
        sizes = Counter(tasks)
        self.groups = np.array([t if sizes[t] >= min_group else SMALL_TASKS for t in tasks])
        self.group_sizes = Counter(self.groups.tolist())
        shape = (len(item_ids), len(models), samples)
        self.score = np.full(shape, np.nan)
        self.cost = np.full(shape, np.nan)
        self.active = list(models)
        self.drops: list[Drop] = []
        self.measured = 0  # items (a prefix of `order`) whose rounds are complete
        self._next = 0
        tests = len(floors) + (len(models) - 1 if dominance else 0)
        challengers = max(1, len(models) - (1 if baseline else 0))
        self.alpha = (1 - confidence) / max(1, tests * challengers)

    # -- rounds --------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.measured >= len(self.item_ids) or len(self.active) <= 1

    @property
    def stop_reason(self) -> str:
        if len(self.active) <= 1:
            return f"decided: {', '.join(self.active) or 'no candidate'} left"
        if self.measured >= len(self.item_ids):
            return "every item measured"
        return "stopped early"

    def next_round(self, batch: int) -> list[str]:
        """The item ids of the next round (the active candidates run on all of them)."""
        self._next = min(len(self.item_ids), self.measured + max(1, batch))
        return [self.item_ids[i] for i in self.order[self.measured : self._next]]

    def record(self, item_id: str, model: str, sample: int, score: float, cost: float) -> None:
        """One outcome (an errored call scores 0, as everywhere in tradeoff)."""
        i, j = self.position[item_id], self.models.index(model)
        self.score[i, j, sample] = score
        self.cost[i, j, sample] = cost

    def close_round(self) -> list[Drop]:
        """Mark the round measured and drop what is now, with confidence, of no use."""
        self.measured = max(self.measured, self._next)
        done = self.order[: self.measured]
        with warnings.catch_warnings():  # a model without outcomes yet: NaN, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            score = np.nanmean(self.score[done], axis=2)  # (items, models): mean over samples
            cost = np.nanmean(self.cost[done], axis=2)
        new = []
        for model in self._challengers(score, cost):
            reason = self._useless(model, score, cost, self.groups[done])
            if reason is not None and len(self.active) > 1:
                self.active.remove(model)
                new.append(Drop(model, self.measured, reason))
        self.drops += new
        return new

    # -- decisions -----------------------------------------------------------------------
    def _challengers(self, score: np.ndarray, cost: np.ndarray) -> list[str]:
        """Active non-baseline candidates, worst first (so of two equals the worse goes)."""
        names = [m for m in self.active if m != self.baseline]
        column = {m: self.models.index(m) for m in names}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            key = {
                m: (np.nanmean(score[:, column[m]]), -np.nanmean(cost[:, column[m]])) for m in names
            }
        return sorted(names, key=lambda m: key[m])

    def _useless(
        self, model: str, score: np.ndarray, cost: np.ndarray, groups: np.ndarray
    ) -> str | None:
        if self.dominance and not self.by_task:
            rival = self._dominated_by(model, score, cost)
            if rival is not None and not self._looks_best_somewhere(model, score, cost, groups):
                return (
                    f"dominated by {rival} (more accurate with confidence, at no higher mean "
                    "cost per call) and the best choice on no task"
                )
        verdicts = []
        for group in sorted(set(self.groups)):
            rows = np.flatnonzero(groups == group)
            why = self._useless_on(model, score[rows], cost[rows]) if len(rows) else None
            if why is None:
                return None
            verdicts.append(why)
        return _reason(verdicts)

    def _useless_on(self, model: str, score: np.ndarray, cost: np.ndarray) -> str | None:
        """Why `model` is of no use on one task's items, or None."""
        c = self.models.index(model)
        for floor in self.floors:
            ref = score[:, self.models.index(str(self.baseline))] if floor.relative else 1.0
            if _rejects(floor.value * ref - score[:, c], self.alpha):  # mean > 0: under it
                return f"below the floor ({floor.text})"
        if self.dominance and self.by_task:
            rival = self._dominated_by(model, score, cost)
            if rival is not None:
                return f"dominated by {rival}"
        return None

    def _looks_best_somewhere(
        self, model: str, score: np.ndarray, cost: np.ndarray, groups: np.ndarray
    ) -> bool:
        """Whether, on some task, no other active candidate is as accurate at no higher mean
        cost (point estimates): a per-task table might pick it there. A task with fewer than
        `MIN_GROUP` items measured (and more to come) cannot tell yet: it keeps the candidate."""
        c = self.models.index(model)
        rivals = [self.models.index(m) for m in self.active if m != model]
        for group in sorted(set(self.groups)):
            rows = np.flatnonzero(groups == group)
            if len(rows) < min(MIN_TASK_ITEMS, self.group_sizes[group]):
                return True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                acc, price = np.nanmean(score[rows], axis=0), np.nanmean(cost[rows], axis=0)
            if not any(acc[d] >= acc[c] and price[d] <= price[c] for d in rivals):
                return True
        return False

    def _dominated_by(self, model: str, score: np.ndarray, cost: np.ndarray) -> str | None:
        c = self.models.index(model)
        with warnings.catch_warnings():  # a candidate not measured yet (a stream's newcomer)
            warnings.simplefilter("ignore", RuntimeWarning)
            price = np.nanmean(cost, axis=0)
        for other in self.active:
            d = self.models.index(other)
            if other == model or not price[d] <= price[c]:
                continue
            if _rejects(score[:, d] - score[:, c], self.alpha):
                return other
        return None

    # -- reporting -----------------------------------------------------------------------
    def measured_items(self, model: str) -> int:
        drop = next((d for d in self.drops if d.model == model), None)
        return drop.after_items if drop else self.measured

    def used(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(scores, costs) of the outcomes the race asked for `model` (flattened), including
        those of a round cut short by --max-cost."""
        drop = next((d for d in self.drops if d.model == model), None)
        rows = self.order[: drop.after_items if drop else max(self.measured, self._next)]
        j = self.models.index(model)
        score, cost = self.score[rows, j].ravel(), self.cost[rows, j].ravel()
        keep = ~np.isnan(score)
        return score[keep], cost[keep]

    def interval(self, model: str) -> tuple[float, float, float, int]:
        """Accuracy over the measured outcomes with the 95% interval the eval summary reports."""
        score, _ = self.used(model)
        mean = float(score.mean()) if score.size else 0.0
        low, high = wilson(mean, int(score.size))
        return mean, low, high, int(score.size)


def _rejects(y: np.ndarray, alpha: float) -> bool:
    """Evidence at level alpha that mean(y) > 0; y is a difference of scores in [-1, 1]."""
    y = y[~np.isnan(y)]
    return crossing(y, 1.0, alpha) is not None


def _reason(verdicts: list[str]) -> str:
    where = "on its only task" if len(verdicts) == 1 else "on every task"
    kinds = Counter(v.split(" (")[0] for v in verdicts)
    if len(kinds) == 1:
        return f"{verdicts[0]} {where}"
    parts = [f"{kind} on {n}" for kind, n in kinds.most_common()]
    return f"of no use on every task ({len(verdicts)}): {'; '.join(parts)}"
