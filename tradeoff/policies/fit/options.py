"""`FitOptions`: everything `fit_policy` is asked, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeoff.evals.reviewers import Reviewer
    from tradeoff.policies.data import CapabilityLookup


@dataclass(frozen=True)
class FitOptions:
    """What to fit and how (`policies.fit.fitting.fit_policy`).

    `n_trials` is the Optuna budget of each configuration search (`policies.fit.search`; 1 = the
    default configurations, no search). `families` limits the families tried (None: every
    registered one, `policies.fit.families`). `guarantee=False` accepts on point estimates and
    `per_request_cost=False` predicts each model's mean cost for every request: benchmarks use
    them to measure what each one is worth. `embedding_model` adds sentence-embedding features
    to every learned-router configuration (`policies.families.embeddings`); without it,
    `try_embedding` is an encoder the search may add where the cross-fitted objective gains
    ("auto": a bundled encoder package, if one is installed; None: never). With `capabilities` (a
    model's, by name), no accepted policy leaves an item to a model that cannot serve it (the
    proxy would answer 400). `traffic_mix` names the task mix the promise is for besides the
    recorded one (`policies.fit.mix`: "auto", "recorded" or "TASK=SHARE,...").
    `not_measured` keeps items some model has no outcome on, that model not measured there
    (`policies.data.load_outcomes`): refits on traffic, where each request measured only some.
    `reviewers` are human tiers, candidates priced per review (`policies.human`).
    """

    dataset: str
    requirement: str
    baseline: str | None = None
    objective: str = "minimize cost"
    seed: int = 0
    train_split: str | None = None
    test_split: str | None = None
    test_fraction: float | None = None
    n_trials: int = 20
    families: tuple[str, ...] | None = None
    name: str | None = None
    save: bool = True
    guarantee: bool = True
    per_request_cost: bool = True
    embedding_model: str | None = None
    try_embedding: str | None = "auto"
    capabilities: CapabilityLookup | None = None
    traffic_mix: str | None = None
    not_measured: bool = False
    reviewers: tuple[Reviewer, ...] = ()
