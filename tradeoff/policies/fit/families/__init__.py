"""How each policy family is fitted: one module per family with its configuration space and
its `FamilySpec` (`policies.fit.spec`), registered here in the order they are fitted."""

from __future__ import annotations

from tradeoff.policies.fit.families.chain import BestOfKSpec, CascadeSpec
from tradeoff.policies.fit.families.learned import LearnedSpec
from tradeoff.policies.fit.families.single import SingleSpec
from tradeoff.policies.fit.families.task_table import TaskTableSpec
from tradeoff.policies.fit.spec import FamilySpec

FAMILY_SPECS: tuple[FamilySpec, ...] = (
    SingleSpec(),
    TaskTableSpec(),
    LearnedSpec(),
    CascadeSpec(),
    BestOfKSpec(),
)
SPECS = {spec.name: spec for spec in FAMILY_SPECS}
FAMILY_ORDER = tuple(SPECS)

__all__ = ["FAMILY_ORDER", "FAMILY_SPECS", "SPECS"]
