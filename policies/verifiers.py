"""Reference-free verifiers for cascade and best-of-k, and their verdicts on recorded responses.

A verifier is a grader that needs no reference answer (`evals.graders.reference_free()`, e.g.
`answer_parses`: the response states a final answer). Replaying a verifier needs the
recorded responses; graders that call out (`judge`: a model call; `code`: runs the item's tests
in a sandbox) are not replayed offline, so families using them are skipped when fitting.
"""

from __future__ import annotations

import numpy as np

from evals.graders import Item, get_grader, reference_free
from policies.data import Outcomes

# Verifiers that cannot be evaluated on recorded responses alone, and why.
NOT_REPLAYABLE = {
    "judge": "calls a judge model",
    "code": "runs code in a sandbox",
    "json_schema": "needs a schema per item",
}


def usable_verifiers(outcomes: Outcomes) -> tuple[list[str], list[str]]:
    """Verifiers that can be replayed on these outcomes, and why the others cannot."""
    if outcomes.responses is None:
        return [], ["no recorded responses, so no verifier can be replayed"]
    usable = [name for name in reference_free() if name not in NOT_REPLAYABLE]
    return usable, [f"{name} {why}" for name, why in NOT_REPLAYABLE.items()]


class Verdicts:
    """Caches each verifier's (n, m, s) accept array over an `Outcomes`' responses."""

    def __init__(self, outcomes: Outcomes) -> None:
        self.outcomes = outcomes
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]

    def _compute(self, name: str) -> np.ndarray:
        out = self.outcomes
        if out.responses is None:
            raise ValueError("no responses loaded")
        grader = get_grader(name)
        items = [
            Item(dataset=out.dataset, item_id=str(item_id), task=str(task), prompt=str(prompt))
            for item_id, task, prompt in zip(out.item_ids, out.tasks, out.prompts, strict=True)
        ]
        accept = np.zeros(out.responses.shape, dtype=bool)
        for (i, j, k), response in np.ndenumerate(out.responses):
            if response is not None:
                accept[i, j, k] = grader.grade(str(response), items[i]).passed
        return accept
