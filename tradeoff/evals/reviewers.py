"""The human review tier: a person who checks an answer, priced and bounded like a model.

```yaml
model_list:
  - model_name: reviewer
    tier: human
    review_cost_usd: 0.50      # per review (or litellm_params.input_cost_per_request)
    accuracy: 0.98             # assumed until reviews measure it (default 1.0)
    draft: gpt-4o-mini         # answers the client while the review waits (default: the plan's
                               # next model, then the policy's baseline)
```

A reviewer is a candidate like any other for `fit`: on every item its outcome is its accuracy
at its price, so a policy routes to it where the affordable models' predicted success is too
low. It is never called: the proxy answers with the draft and queues the request for review;
the reviewer's verdict becomes the request's label (router/review/, policies/loop/reviews.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeoff.evals.errors import ConfigError

HUMAN_TIER = "human"
# `tradeoff fit --human-cost USD` adds this reviewer when the registry configures none.
DEFAULT_REVIEWER = "reviewer"
# litellm_params of a human entry: a placeholder model string, never sent anywhere.
PLACEHOLDER_PREFIX = "human/"


@dataclass(frozen=True)
class Reviewer:
    """A human tier: its name, price per review, assumed accuracy, and the drafting model."""

    name: str
    cost_usd: float
    accuracy: float = 1.0
    draft: str | None = None


def parse_reviewer(name: str, raw: dict[str, Any], where: str) -> Reviewer:
    """Validate a `tier: human` entry's keys; a clear error for each mistake."""
    params = raw.get("litellm_params") or {}
    cost = raw.get("review_cost_usd", params.get("input_cost_per_request"))
    if cost is None:
        raise ConfigError(
            f"{where}: reviewer {name!r} needs review_cost_usd (USD per review), "
            "e.g. review_cost_usd: 0.5"
        )
    accuracy = raw.get("accuracy", 1.0)
    draft = raw.get("draft")
    try:
        cost_f, accuracy_f = float(cost), float(accuracy)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: reviewer {name!r}: review_cost_usd and accuracy must be numbers"
        ) from None
    if isinstance(cost, bool) or cost_f < 0:
        raise ConfigError(f"{where}: reviewer {name!r}: review_cost_usd must be a number >= 0")
    if isinstance(accuracy, bool) or not 0.0 <= accuracy_f <= 1.0:
        raise ConfigError(f"{where}: reviewer {name!r}: accuracy must be between 0 and 1")
    if draft is not None and (not isinstance(draft, str) or not draft):
        raise ConfigError(f"{where}: reviewer {name!r}: draft must name a configured model")
    return Reviewer(name=name, cost_usd=cost_f, accuracy=accuracy_f, draft=draft)


def reviewer_of(entry: Any) -> Reviewer | None:
    """The Reviewer of a registry entry (`evals.registry.ModelEntry`), None for a model."""
    if getattr(entry, "tier", None) != HUMAN_TIER:
        return None
    raw = {"litellm_params": entry.litellm_params, **entry.extra}
    return parse_reviewer(entry.name, raw, f"model {entry.name!r}")


def reviewers(registry: Any) -> list[Reviewer]:
    """Every human tier in a registry, in file order."""
    return [r for r in (reviewer_of(e) for e in registry) if r is not None]
