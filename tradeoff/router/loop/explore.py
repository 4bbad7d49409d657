"""Exploring inside the proxy (cold start; what it is and why it is valid:
policies/loop/explore.py).

`Exploring` keeps an `Explorer` (policies/loop/explorer.py) per served name that `tradeoff
explore` named candidates for, and answers three questions for the loop:

- `asked(served, routed)`, when a sampled request's shadow job is built: which candidates it
  also asks: the open ones (not the routed model), all of them while the serving version routes
  only to its baseline, `LATER_SHARE` of the sampled requests once a promoted version routes
  beyond it;
- `take(job)`, when the job's baseline answer is in (the shadow runner's `Candidates`): which of
  them to ask now: not one the race dropped while the job waited, nor one already
  `EXPLORE_AHEAD` calls ahead of the answers its race has seen;
- `record(result)`: this proxy's graded answers go to its race at once, and the race runs in a
  thread (it records what it drops in the store), one run at a time.

`sync` (when the served policies change, and every `EXPLORE_EVERY` reads of the pairs, so a
candidate added while serving is seen) and `refresh` (with the watches: other replicas' answers
and the drops recorded) read the store; both block, so the loop runs them in threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from tradeoff.evals.store import Store
from tradeoff.policies.loop.explore import EXPLORE_AHEAD, LATER_SHARE, explorations
from tradeoff.policies.loop.explorer import Explorer
from tradeoff.policies.loop.proven import proven
from tradeoff.router.reload import ServedPolicy

if TYPE_CHECKING:
    from tradeoff.router.loop.shadow import ShadowJob, ShadowResult, ShadowRunner

log = logging.getLogger("tradeoff.loop")
EXPLORE_EVERY = 10  # reads of the pairs between looks for new or changed explorations


class Exploring:
    """The proxy's explorers; see the module docstring."""

    def __init__(self, store: Store, spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self.store = store
        self.shadow: ShadowRunner | None = None
        self.explorers: dict[str, Explorer] = {}
        self._spawn = spawn
        self._calls: Counter[tuple[str, str]] = Counter()  # (policy, candidate): calls made

    def sync(self, current: Mapping[str, ServedPolicy]) -> None:
        """An explorer per served name with an exploration (blocking: reads the store)."""
        with self.store.connect() as con:
            found = explorations(con)
        explorers = {}
        for name, exploration in found.items():
            served = current.get(name)
            if served is None or served.epoch == 0:
                continue  # a pinned version or a file: not the name's exploring
            old = self.explorers.get(name)
            if old is not None and old.exploration == exploration:
                explorers[name] = old
                continue
            explorers[name] = Explorer(exploration)
            explorers[name].refresh(self.store, decide=False)
            targets = self.shadow.targets if self.shadow else {}
            missing = [m for m in exploration.candidates if m not in targets]
            log.info(
                "loop: exploring %s against %s: %s%s", name, exploration.baseline,
                ", ".join(exploration.candidates),
                f" ({', '.join(missing)} not in models.yaml: not asked)" if missing else "",
            )  # fmt: skip
        self.explorers = explorers

    def refresh(self) -> None:
        """Read other replicas' answers and the recorded drops; decide (blocking)."""
        for explorer in list(self.explorers.values()):
            explorer.refresh(self.store, decide=False)
            self.decide(explorer)

    def entry(self, name: str) -> dict[str, Any] | None:
        explorer = self.explorers.get(name)
        return None if explorer is None else proven(explorer)

    # -- the shadow jobs ---------------------------------------------------------------------
    def asked(self, served: ServedPolicy, routed: str) -> tuple[str, ...]:
        """The candidates a sampled request of `served` also asks."""
        explorer = self.explorers.get(served.name)
        if explorer is None or self.shadow is None:
            return ()
        models = tuple(m for m in explorer.open if m != routed and m in self.shadow.targets)
        promoted = any(m != served.baseline for m in served.policy.models)
        if models and promoted and not self.shadow.sample(LATER_SHARE):
            return ()
        return models

    def take(self, job: ShadowJob) -> tuple[str, ...]:
        """The job's candidates to ask now (see the module docstring)."""
        explorer = self.explorers.get(job.policy)
        if explorer is None:
            return ()
        taken = []
        for model in job.explore:
            key = (job.policy, model)
            if model not in explorer.open:
                continue
            if self._calls[key] - explorer.answered(model) >= EXPLORE_AHEAD:
                if self.shadow is not None:
                    self.shadow.outcomes[(job.policy, "explore_waiting")] += 1
                continue
            self._calls[key] += 1
            taken.append(model)
        return tuple(taken)

    def missed(self, policy: str, model: str) -> None:
        """A candidate `take` allowed gave no graded answer: its call does not count ahead."""
        self._calls[(policy, model)] -= 1

    def record(self, result: ShadowResult) -> None:
        """This proxy's graded answers to one request, the baseline's among them."""
        job = result.job
        explorer = self.explorers.get(job.policy)
        if explorer is None or not result.explored:
            return
        base_cost = job.routed_cost_usd if result.free else result.baseline_cost_usd
        base_score = result.score.baseline if result.reference is None else result.reference
        answers = {job.baseline: (base_score, base_cost)}
        if not result.free:
            answers[job.routed_model] = (result.score.routed, job.routed_cost_usd)
        answers |= {a.model: (a.score, a.cost_usd) for a in result.explored}
        explorer.record(job.request_id, job.task or "", answers)
        self._spawn(asyncio.to_thread(self.decide, explorer))

    def decide(self, explorer: Explorer) -> None:
        """Run the race; log what it drops (blocking: records drops in the store)."""
        try:
            drops = explorer.decide(self.store)
        except Exception as exc:  # the store is away: the next run records them
            log.info("loop: the race of %s could not record its drops (%s)", explorer.name, exc)
            return
        for drop in drops:
            log.info(
                "loop: %s stops exploring %s after %d requests: %s",
                explorer.name, drop.model, drop.after_items, drop.reason,
            )  # fmt: skip
