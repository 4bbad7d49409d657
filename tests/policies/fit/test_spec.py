"""The fit sees families only through their registered specs."""

from __future__ import annotations

from tradeoff.policies.families.base import FAMILIES, _load_builtin_families
from tradeoff.policies.fit.families import FAMILY_SPECS, SPECS


def test_every_served_family_is_fitted_by_one_spec() -> None:
    _load_builtin_families()
    assert len(SPECS) == len(FAMILY_SPECS)
    assert set(SPECS) == set(FAMILIES)


def test_simplicity_ranks_are_distinct_so_ties_are_decided() -> None:
    ranks = [spec.simplicity for spec in FAMILY_SPECS]
    assert len(set(ranks)) == len(ranks)
