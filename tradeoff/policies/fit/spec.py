"""`FamilySpec`: what a policy family contributes to fitting, in one object per family.

A spec says whether the training items can support its family (`unusable`), which
configuration spaces to search (`spaces`, `policies.fit.spaces`; none for a family with nothing
to tune) and how the searches become candidates (`candidates`, by default one gain-per-dollar
path per search, `policies.fit.candidates`), plus how it ranks among simpler families.
`fit_policy` iterates the registered specs (`policies.fit.families.FAMILY_SPECS`); adding a
family is its serving module (`policies.families`), its fitting module with its space and spec
(`policies.fit.families`) and a line in each registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.families.verifiers import Verdicts
from tradeoff.policies.fit.candidates import FamilyCandidates, searched_paths
from tradeoff.policies.fit.search import Searched
from tradeoff.policies.fit.spaces import Pieces, Space

PATH_POINTS = 400  # cost weights per path: every distinct routing up to this many


@dataclass(frozen=True)
class FitContext:
    """What every spec sees of one fit: the training items and what their fits share."""

    train: Outcomes
    base_j: int  # the baseline's model index
    folds: np.ndarray  # each training item's cross-fitting fold
    pieces: Pieces
    verdicts: Verdicts | None  # None without recorded responses
    verifiers: list[str]  # reference-free verifiers that can be replayed on the responses
    no_verifier: list[str]  # why the others cannot
    samples: int  # the most samples recorded for an item
    per_request_cost: bool
    cheap_first: bool  # cost-weight paths are tested cheapest first


class FamilySpec:
    """How one family is fitted; see the module docstring."""

    name: ClassVar[str]
    simplicity: ClassVar[int]  # within SIMPLER_WITHIN of the best, the lowest wins
    searched: ClassVar[bool] = True  # it has configuration spaces to search
    no_space: ClassVar[str] = ""  # why it is skipped when `spaces` finds none
    reports_models_used: ClassVar[bool] = False  # its description counts the models it used

    def unusable(self, ctx: FitContext) -> str | None:
        """Why the training items cannot support this family (None: they can)."""
        return "needs at least two models" if len(ctx.train.models) < 2 else None

    def spaces(self, ctx: FitContext) -> list[Space]:
        """The configuration spaces to search, one path of candidates each."""
        return []

    def candidates(self, ctx: FitContext, searches: list[Searched]) -> FamilyCandidates:
        """The candidates, in testing order, from the nested searches of `spaces`."""
        return searched_paths(self.name, searches, ctx.folds, PATH_POINTS, ctx.cheap_first)
