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
from typing import TYPE_CHECKING

import numpy as np

from tradeoff.evals.reviewers import Reviewer
from tradeoff.policies.data import Outcomes, baseline_index

if TYPE_CHECKING:
    from tradeoff.policies.artifact import PolicyArtifact


def with_reviewers(outcomes: Outcomes, reviewers: list[Reviewer], default_draft: int) -> Outcomes:
    """`outcomes` with a column per reviewer (appended, so model indices stay); a reviewer's
    draft is its own `draft` when it has outcomes here, else `default_draft`. A reviewer with
    recorded outcomes (verdicts on traffic) keeps them where it has them: measured, not
    assumed."""
    if not reviewers:
        return outcomes
    for reviewer in reviewers:
        outcomes = _with_reviewer(outcomes, reviewer, default_draft)
    return replace(
        outcomes,
        notes=(
            *outcomes.notes,
            *(
                f"reviewer {r.name}: assumed accuracy {r.accuracy:g} where not measured, at "
                f"${r.cost_usd:g} per review plus its draft's cost"
                for r in reviewers
            ),
        ),
    )


def fitted_reviewers(artifact: PolicyArtifact) -> tuple[Reviewer, ...]:
    """The human tiers `artifact` was fitted with (`fit` records them in its metrics)."""
    return tuple(Reviewer(**r) for r in artifact.metrics.get("reviewers") or [])


def with_fitted_reviewers(outcomes: Outcomes, artifact: PolicyArtifact) -> Outcomes:
    """`outcomes` with the reviewers `artifact` was fitted with, drafted by its baseline, so
    the policy replays where it routes to review."""
    known = artifact.baseline if artifact.baseline in outcomes.models else None
    return with_reviewers(
        outcomes, list(fitted_reviewers(artifact)), baseline_index(outcomes, known)
    )


def _with_reviewer(outcomes: Outcomes, reviewer: Reviewer, default_draft: int) -> Outcomes:
    n, m, s = outcomes.score.shape
    d = default_draft
    if reviewer.draft is not None and reviewer.draft in outcomes.models:
        d = outcomes.models.index(reviewer.draft)
    score = np.full((n, s), np.nan)
    score[:, 0] = reviewer.accuracy
    cost = np.full((n, s), np.nan)
    cost[:, 0] = np.nan_to_num(outcomes.cost[:, d, 0]) + reviewer.cost_usd
    latency = np.full((n, s), np.nan)
    latency[:, 0] = outcomes.latency[:, d, 0]
    error = np.zeros((n, s), dtype=bool)
    human = np.zeros(m, dtype=bool) if outcomes.human is None else outcomes.human.copy()
    if reviewer.name in outcomes.models:  # measured by verdicts: keep what was recorded
        j = outcomes.models.index(reviewer.name)
        measured = ~np.isnan(outcomes.score[:, j, 0])
        out = replace(
            outcomes,
            score=outcomes.score.copy(),
            cost=outcomes.cost.copy(),
            latency=outcomes.latency.copy(),
            error=outcomes.error.copy(),
            capable=None if outcomes.capable is None else outcomes.capable.copy(),
        )
        out.score[~measured, j] = score[~measured]
        out.cost[~measured, j] = cost[~measured]
        out.latency[~measured, j] = latency[~measured]
        out.error[~measured, j] = False
        if out.capable is not None:
            out.capable[:, j] = True
        human[j] = True
        return replace(out, human=human)
    responses = outcomes.responses
    capable = outcomes.capable
    return replace(
        outcomes,
        models=(*outcomes.models, reviewer.name),
        score=np.concatenate([outcomes.score, score[:, None, :]], axis=1),
        cost=np.concatenate([outcomes.cost, cost[:, None, :]], axis=1),
        latency=np.concatenate([outcomes.latency, latency[:, None, :]], axis=1),
        error=np.concatenate([outcomes.error, error[:, None, :]], axis=1),
        responses=None
        if responses is None
        else np.concatenate([responses, np.full((n, 1, s), None, dtype=object)], axis=1),
        capable=None
        if capable is None
        else np.concatenate([capable, np.ones((n, 1), dtype=bool)], axis=1),
        human=np.concatenate([human, [True]]),
    )
