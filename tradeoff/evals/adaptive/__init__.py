"""Adaptive evaluation: race candidates over rounds of items and stop measuring the ones that,
with confidence, no policy meeting the requirement needs (`tradeoff eval --adaptive`)."""

from tradeoff.evals.adaptive.drops import dropped_models
from tradeoff.evals.adaptive.race import Drop, Floor, Race
from tradeoff.evals.adaptive.run import AdaptiveReport, AdaptiveSpec, run_adaptive

__all__ = [
    "AdaptiveReport",
    "AdaptiveSpec",
    "Drop",
    "Floor",
    "Race",
    "dropped_models",
    "run_adaptive",
]
