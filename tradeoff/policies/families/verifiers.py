"""Reference-free verifiers for cascade and best-of-k, and their verdicts on recorded responses.

A verifier is a grader that needs no reference answer (`evals.graders.reference_free()`). Where
responses are recorded, these replay offline, so the economics of escalation and of k samples
are priced from data: `answer_parses` (the response states a final answer), `self_consistency`
(most of the k samples agree on the answer; judged per group, as the proxy judges the k choices
of one call) and `prompt_tests` (the code passes the tests stated in the prompt, run in the
sandbox). Graders that call out or need more than the recorded item are not replayed, so
families using only them are skipped when fitting.
"""

from __future__ import annotations

import asyncio

import numpy as np

from tradeoff.evals.graders import Grader, Item, get_grader, reference_free
from tradeoff.evals.graders.prompt_tests import prompt_checks
from tradeoff.policies.data import Outcomes

# Verifiers that cannot be evaluated on recorded responses alone, and why.
NOT_REPLAYABLE = {
    "judge": "calls a judge model",
    "code": "needs each item's own tests (item metadata)",
    "json_schema": "needs a schema per item",
}
GROUP_ONLY = ("self_consistency",)  # meaningful only over k >= 2 samples (best_of_k)
CONCURRENCY = 4  # sandboxed runs at once when a verifier executes code
MAX_SANDBOX_RUNS = 5000  # replaying prompt_tests beyond this many runs would dominate the fit


def usable_verifiers(outcomes: Outcomes) -> tuple[list[str], list[str]]:
    """Verifiers that can be replayed on these outcomes, and why the others cannot."""
    if outcomes.responses is None:
        return [], ["no recorded responses, so no verifier can be replayed"]
    why = dict(NOT_REPLAYABLE)
    with_tests = np.array([prompt_checks(str(p)) is not None for p in outcomes.prompts], dtype=bool)
    runs = int(np.sum(outcomes.responses[with_tests] != None))  # noqa: E711 - elementwise
    if runs > MAX_SANDBOX_RUNS:
        why["prompt_tests"] = (
            f"would run {runs:,} programs in the sandbox (limit {MAX_SANDBOX_RUNS:,})"
        )
    elif not runs:
        why["prompt_tests"] = "no prompt states tests"
    usable = [name for name in reference_free() if name not in why]
    return usable, [f"{name} {reason}" for name, reason in why.items()]


def judges_groups(grader: Grader) -> bool:
    return type(grader).grade_group is not Grader.grade_group


class Verdicts:
    """Caches each verifier's (n, m, s) accept array over an `Outcomes`' responses; a verifier
    that judges groups (self-consistency) is judged over the first `samples` samples."""

    def __init__(self, outcomes: Outcomes) -> None:
        self.outcomes = outcomes
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def __call__(self, name: str, samples: int = 1) -> np.ndarray:
        grader = get_grader(name)
        key = (name, samples if judges_groups(grader) else 0)
        if key not in self._cache:
            self._cache[key] = self._compute(grader, samples if key[1] else 0)
        return self._cache[key]

    def _items(self) -> list[Item]:
        out = self.outcomes
        return [
            Item(dataset=out.dataset, item_id=str(item_id), task=str(task), prompt=str(prompt))
            for item_id, task, prompt in zip(out.item_ids, out.tasks, out.prompts, strict=True)
        ]

    def _compute(self, grader: Grader, group: int) -> np.ndarray:
        responses = self.outcomes.responses
        if responses is None:
            raise ValueError("no responses loaded")
        items = self._items()
        accept = np.zeros(responses.shape, dtype=bool)
        n, m, _ = responses.shape
        if group:
            for i in range(n):
                for j in range(m):
                    texts = [str(r) for r in responses[i, j, :group] if r is not None]
                    scores = grader.grade_group(texts, items[i]) if texts else []
                    accept[i, j, : len(scores)] = [score.passed for score in scores]
            return accept
        cells = [(i, j, k) for (i, j, k), r in np.ndenumerate(responses) if r is not None]
        work = [(str(responses[c]), items[c[0]]) for c in cells]
        if type(grader).agrade is Grader.agrade:  # pure computation: no event loop needed
            passed = [grader.grade(r, item).passed for r, item in work]
        else:  # waits on subprocesses (the sandbox): CONCURRENCY at once
            passed = asyncio.run(_grade_all(grader, work))
        for cell, ok in zip(cells, passed, strict=True):
            accept[cell] = ok
        return accept


async def _grade_all(grader: Grader, work: list[tuple[str, Item]]) -> list[bool]:
    """Every (response, item), CONCURRENCY at a time (sandboxed code runs are slow)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(response: str, item: Item) -> bool:
        async with gate:
            return (await grader.agrade(response, item)).passed

    return list(await asyncio.gather(*(one(r, item) for r, item in work)))
