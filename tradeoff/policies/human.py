"""Human reviewers as candidates: a column of outcomes priced per review.

A reviewer (`evals/reviewers.py`) is never called, so it has no recorded outcomes. On every item
its outcome is what serving a review costs and gives: the draft model's answer, which the
client gets at once (so the draft's latency and tokens), checked by a person at
`review_cost_usd`, right with the reviewer's assumed `accuracy`. Once reviews measure it, the
verdicts recorded on traffic replace the assumption (the loop refits on them).

Only sample 0 is filled: a review is one review, never sampled k times by best-of-k.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tradeoff.evals.reviewers import Reviewer
from tradeoff.policies.data import Outcomes
from tradeoff.policies.errors import DataError


def with_reviewers(outcomes: Outcomes, reviewers: list[Reviewer], default_draft: int) -> Outcomes:
    """`outcomes` with one column per reviewer appended (model indices of the others kept);
    a reviewer's draft is its own `draft` when it has outcomes here, else `default_draft`."""
    if not reviewers:
        return outcomes
    n, m, s = outcomes.score.shape
    taken = set(outcomes.models)
    score, cost = [outcomes.score], [outcomes.cost]
    latency, error = [outcomes.latency], [outcomes.error]
    responses = [outcomes.responses] if outcomes.responses is not None else None
    capable = [outcomes.capable] if outcomes.capable is not None else None
    names = []
    for reviewer in reviewers:
        if reviewer.name in taken:
            raise DataError(
                f"reviewer {reviewer.name!r} also has recorded outcomes on dataset "
                f"{outcomes.dataset!r}; name the human tier differently"
            )
        d = default_draft
        if reviewer.draft is not None and reviewer.draft in outcomes.models:
            d = outcomes.models.index(reviewer.draft)
        col = np.full((n, 1, s), np.nan)
        col[:, 0, 0] = reviewer.accuracy
        score.append(col)
        c = np.full((n, 1, s), np.nan)
        c[:, 0, 0] = np.nan_to_num(outcomes.cost[:, d, 0]) + reviewer.cost_usd
        cost.append(c)
        lat = np.full((n, 1, s), np.nan)
        lat[:, 0, 0] = outcomes.latency[:, d, 0]
        latency.append(lat)
        error.append(np.zeros((n, 1, s), dtype=bool))
        if responses is not None:
            responses.append(np.full((n, 1, s), None, dtype=object))
        if capable is not None:
            capable.append(np.ones((n, 1), dtype=bool))
        names.append(reviewer.name)
        taken.add(reviewer.name)
    human = np.zeros(m + len(names), dtype=bool)
    human[m:] = True
    if outcomes.human is not None:
        human[:m] = outcomes.human
    return replace(
        outcomes,
        models=(*outcomes.models, *names),
        score=np.concatenate(score, axis=1),
        cost=np.concatenate(cost, axis=1),
        latency=np.concatenate(latency, axis=1),
        error=np.concatenate(error, axis=1),
        responses=None if responses is None else np.concatenate(responses, axis=1),
        capable=None if capable is None else np.concatenate(capable, axis=1),
        human=human,
        notes=(
            *outcomes.notes,
            *(
                f"reviewer {r.name}: assumed accuracy {r.accuracy:g} at "
                f"${r.cost_usd:g} per review plus its draft's cost"
                for r in reviewers
            ),
        ),
    )
