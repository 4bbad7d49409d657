"""Fitting `single`: each model alone, nothing to search."""

from __future__ import annotations

from tradeoff.policies.fit.candidates import FamilyCandidates, singles
from tradeoff.policies.fit.search import Searched
from tradeoff.policies.fit.spec import FamilySpec, FitContext


class SingleSpec(FamilySpec):
    name = "single"
    simplicity = 0
    searched = False

    def unusable(self, ctx: FitContext) -> str | None:
        return None

    def candidates(self, ctx: FitContext, searches: list[Searched]) -> FamilyCandidates:
        return singles(ctx.train)
