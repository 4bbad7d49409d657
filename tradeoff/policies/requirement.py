"""The requirement language, as policies use it: defined in `tradeoff.evals.requirement` (the
lowest layer, since adaptive evaluation races against a requirement too) and re-exported here."""

from tradeoff.evals.requirement import (
    ALIASES,
    METRICS,
    OPS,
    Constraint,
    Objective,
    Requirement,
    parse_objective,
    parse_requirement,
)

__all__ = [
    "ALIASES",
    "METRICS",
    "OPS",
    "Constraint",
    "Objective",
    "Requirement",
    "parse_objective",
    "parse_requirement",
]
