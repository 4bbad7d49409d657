"""`tradeoff eval --adaptive`: the eval runner, fed round by round by a race.

The runner does what it always does (limits, retries, grading, batched writes, --max-cost, the
runs row); the race (`evals.adaptive.race`) chooses each round's calls and drops candidates.
Resuming needs no state of its own: outcomes are the state. A rerun of the same command replays
the same rounds in the same order, taking every recorded outcome from the store instead of
calling, so it reaches the same decisions and calls only what is missing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from tradeoff.evals.adaptive.drops import clear_drops, record_drop
from tradeoff.evals.adaptive.race import Drop, Floor, Race
from tradeoff.evals.errors import UsageError
from tradeoff.evals.registry import Registry
from tradeoff.evals.requirement import parse_requirement
from tradeoff.evals.runner import EvalReport, EvalSpec, Job, Runner
from tradeoff.evals.store import Store

ROUNDS = 50  # default batch: the items split into about this many rounds
MIN_BATCH = 10


@dataclass
class AdaptiveSpec:
    """What `tradeoff eval --adaptive` was asked to do."""

    eval: EvalSpec
    requirement: str
    baseline: str | None = None
    batch_items: int | None = None  # items per round; default len(items) / ROUNDS
    seed: int = 0
    by_task: bool = False  # dominance judged task by task (see evals/adaptive/race.py)


@dataclass
class AdaptiveReport:
    """The eval's report plus what the race saved and why."""

    eval: EvalReport
    calls: int  # outcomes the race needed (recorded now or before)
    calls_exhaustive: int
    cost_usd: float  # their cost
    cost_exhaustive_usd: float  # estimated: each candidate's mean cost per call x every call
    dropped: list[Drop]
    stop_reason: str
    rounds: int
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.eval.to_dict(),
            "adaptive": True,
            "calls": self.calls,
            "calls_exhaustive": self.calls_exhaustive,
            "cost_usd": self.cost_usd,
            "cost_exhaustive_usd": self.cost_exhaustive_usd,
            "dropped": [d.to_dict() for d in self.dropped],
            "stop_reason": self.stop_reason,
            "rounds": self.rounds,
            "candidates": self.candidates,
        }


def requirement_rules(text: str) -> tuple[tuple[Floor, ...], bool]:
    """The accuracy floors of a requirement, and whether accuracy-and-cost dominance applies."""
    req = parse_requirement(text)
    floors = tuple(
        Floor(c.value, c.relative, str(c))
        for c in req.constraints
        if c.metric == "accuracy" and c.lower_bound
    )
    metrics = {c.metric for c in req.constraints} | {req.objective.metric}
    return floors, metrics <= {"accuracy", "cost"}


def prepare(store: Store, registry: Registry, spec: AdaptiveSpec) -> tuple[Runner, Race, int]:
    """Check everything and build the runner, the race and the batch size; no call yet."""
    floors, dominance = requirement_rules(spec.requirement)
    if spec.baseline is None and any(f.relative for f in floors):
        raise UsageError(
            f'"{spec.requirement}" is relative to a baseline: name it with --baseline MODEL'
        )
    if not floors and not dominance:
        raise UsageError(
            f'"{spec.requirement}" gives adaptive evaluation nothing to drop candidates by '
            "(it needs an accuracy floor, or only accuracy and cost); run without --adaptive"
        )
    models = list(spec.eval.models)
    if spec.baseline is not None and spec.baseline not in models:
        models.insert(0, spec.baseline)
    runner = Runner(store, registry, replace(spec.eval, models=models))
    race = Race(
        [item.item_id for item in runner.items],
        [item.task for item in runner.items],
        models,
        baseline=spec.baseline,
        floors=floors,
        dominance=dominance,
        by_task=spec.by_task,
        samples=spec.eval.repeats,
        seed=spec.seed,
    )
    batch = spec.batch_items or max(MIN_BATCH, math.ceil(len(runner.items) / ROUNDS))
    return runner, race, batch


def run_adaptive(
    store: Store,
    registry: Registry,
    spec: AdaptiveSpec,
    *,
    on_ready: Callable[[Runner, Race], None] | None = None,
) -> AdaptiveReport:
    """Check, then race the candidates; blocking. See the module docstring."""
    runner, race, batch = prepare(store, registry, spec)
    _load_recorded(store, runner, race)
    runner.on_outcome = lambda job, row: race.record(
        job.item.item_id, job.model, job.sample, _score(row), float(row["cost_usd"] or 0.0)
    )
    clear_drops(store, spec.eval.dataset, race.models)
    if on_ready is not None:
        on_ready(runner, race)
    rounds = _Rounds(runner, race, batch, spec.requirement)
    report = asyncio.run(runner.run(iter(rounds)))
    return _report(report, race, rounds.count, spec.eval.repeats)


def _score(row: dict[str, Any]) -> float:
    return 0.0 if row["error"] is not None or row["score"] is None else float(row["score"])


def _load_recorded(store: Store, runner: Runner, race: Race) -> None:
    """Outcomes already in the store (this race's earlier runs, or any eval) feed the race."""
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT item_id, model, sample, params_hash, score, cost_usd FROM outcomes "
            "WHERE dataset = ? AND model = ANY(?) AND error IS NULL AND sample < ?",
            [runner.spec.dataset, race.models, runner.spec.repeats],
        ).fetchall()
    for item_id, model, sample, phash, score, cost in rows:
        if phash == runner.hashes[model] and item_id in race.position:
            race.record(item_id, model, sample, float(score or 0.0), float(cost or 0.0))


class _Rounds:
    """The batches of calls, one per round; decides drops between them."""

    def __init__(self, runner: Runner, race: Race, batch: int, requirement: str) -> None:
        self.runner, self.race, self.batch = runner, race, batch
        self.requirement = requirement
        self.items = {item.item_id: item for item in runner.items}
        self.count = 0

    def __iter__(self) -> Iterator[list[Job]]:
        race, runner = self.race, self.runner
        while not race.finished:
            ids = race.next_round(self.batch)
            jobs = [
                Job(self.items[item_id], model, sample)
                for sample in range(runner.spec.repeats)
                for item_id in ids
                for model in race.active
                if (item_id, model, sample) not in runner.done
            ]
            if jobs:
                yield jobs  # the runner calls them; `on_outcome` records each in the race
            self.count += 1
            for drop in race.close_round():
                self._dropped(drop)
            self._note_round()
        runner.progress.total = runner.progress.done  # the rest will not be called

    def _dropped(self, drop: Drop) -> None:
        runner, race = self.runner, self.race
        record_drop(
            runner.store,
            runner.spec.dataset,
            drop,
            runner.hashes[drop.model],
            self.requirement,
            runner.run_id,
        )
        later = [race.item_ids[i] for i in race.order[race.measured :]]
        runner.progress.total -= sum(
            (item_id, drop.model, s) not in runner.done
            for item_id in later
            for s in range(runner.spec.repeats)
        )
        runner.progress.note(f"dropped {drop.model} after {drop.after_items} items: {drop.reason}")

    def _note_round(self) -> None:
        race = self.race
        parts = []
        for model in race.models:
            mean, low, high, _ = race.interval(model)
            state = "" if model in race.active else " (dropped)"
            parts.append(f"{model} {mean:.3f} [{low:.3f}, {high:.3f}]{state}")
        self.runner.progress.note(
            f"round {self.count}: {race.measured}/{len(race.item_ids)} items; accuracy [95% CI]: "
            + "; ".join(parts)
        )


def _report(report: EvalReport, race: Race, rounds: int, repeats: int) -> AdaptiveReport:
    calls, cost, exhaustive_cost, candidates = 0, 0.0, 0.0, []
    every = len(race.item_ids) * repeats
    drops = {d.model: d for d in race.drops}
    for model in race.models:
        scores, costs = race.used(model)
        calls += int(scores.size)
        cost += float(costs.sum())
        exhaustive_cost += float(costs.mean()) * every if costs.size else 0.0
        mean, low, high, n = race.interval(model)
        measured = race.measured_items(model)
        candidates.append(
            {
                "model": model,
                "status": "dropped" if model in drops else "kept",
                "measured_items": measured,
                "not_measured_items": len(race.item_ids) - measured,
                "accuracy": mean,
                "accuracy_ci": [low, high],
                "outcomes": n,
            }
        )
    return AdaptiveReport(
        eval=report,
        calls=calls,
        calls_exhaustive=every * len(race.models),
        cost_usd=cost,
        cost_exhaustive_usd=exhaustive_cost,
        dropped=list(race.drops),
        stop_reason=race.stop_reason if report.status == "completed" else report.status,
        rounds=rounds,
        candidates=candidates,
    )
