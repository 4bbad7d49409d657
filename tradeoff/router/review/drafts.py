"""Serving a review: a plan whose first model is a human tier is answered by a draft model.

A reviewer (evals/reviewers.py) is never called. When a policy's plan starts with one, or a
client names one as its model, the request is routed to the draft instead: the reviewer's
`draft`, else the plan's next model, else the policy's baseline; the plan's other models stay
as fallbacks. The answer is marked (`x-tradeoff-review: required` and `x-tradeoff-review-id`),
its log row carries the review id and costs the draft's tokens plus the review's price, and the
request enters the review queue in the same store transaction as its row (router/log).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tradeoff.evals.errors import ConfigError
from tradeoff.evals.reviewers import Reviewer
from tradeoff.router.errors import ProxyError

if TYPE_CHECKING:
    from tradeoff.router.state import ProxyState

__all__ = ["REVIEW_HEADER", "REVIEW_ID_HEADER", "check_drafts", "draft_models", "new_review_id"]

REVIEW_HEADER = "x-tradeoff-review"
REVIEW_ID_HEADER = "x-tradeoff-review-id"


def new_review_id() -> str:
    return f"rev-{uuid.uuid4().hex}"


def draft_models(
    state: ProxyState, reviewer: Reviewer, rest: tuple[str, ...], baseline: str | None
) -> tuple[str, ...]:
    """The models that answer while `reviewer` reviews: the draft first, then the plan's other
    models (`rest`, reviewers left out). A 400 when there is no model to draft with."""
    rest = tuple(m for m in rest if m in state.targets)
    if reviewer.draft is not None:
        draft = reviewer.draft
    elif rest:
        draft = rest[0]
    elif baseline is not None and baseline in state.targets:
        draft = baseline
    else:
        raise ProxyError(
            400,
            f"{reviewer.name!r} is a human review tier and is never called, and nothing here "
            "can draft its answer: give it `draft: MODEL` in models.yaml, or send the request "
            "to a policy (its next model or baseline drafts)",
            param="model",
            code="review_without_draft",
        )
    return (draft, *(m for m in rest if m != draft))


def check_drafts(reviewers: dict[str, Reviewer], models: set[str]) -> None:
    """At startup: every reviewer's `draft` is a configured model (a ConfigError if not)."""
    for reviewer in reviewers.values():
        if reviewer.draft is not None and reviewer.draft not in models:
            raise ConfigError(
                f"reviewer {reviewer.name!r} drafts with {reviewer.draft!r}, which is not a "
                "model in models.yaml; name a configured model in its `draft`"
            )
