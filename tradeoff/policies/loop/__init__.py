"""The loop: traffic -> graded pairs -> live guarantee monitor -> refit -> guarded promotion;
and cold start: candidates explored in shadow -> a race -> what is proven -> refit.

One module per step, each with a one-method contract: `grading` (PairGrader.grade),
`monitor` (Monitor.update), `traffic` (TrafficWriter.record), `feedback` (record_feedback),
`reviews` (submit_verdict: a human reviewer's verdict as a label),
`status` (Watch, loop_status), `explore` (explore: what `tradeoff explore` records),
`explorer` (Explorer.decide: the race of the candidates), `proven` (proven: what the traffic
proves so far), `refit` (refit_policy) and `promote` (promotion_test, rollback). The proxy
drives the first ones (router/loop/shadow.py, router/loop/feedback.py, router/loop/live.py,
router/loop/explore.py, router/loop/refits.py, router/review/); the CLI (`cli.py`) the rest.

Names are imported on first use, so `tradeoff --help` does not load numpy and pyarrow.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "Pair": "grading",
    "PairGrader": "grading",
    "PairScore": "grading",
    "build_pair_grader": "grading",
    "Monitor": "monitor",
    "Reading": "monitor",
    "Exploration": "explore",
    "Explorer": "explorer",
    "explorations": "explore",
    "proven": "proven",
    "Watch": "status",
    "load_watch": "status",
    "loop_status": "status",
    "required_share": "status",
    "GradedPair": "traffic",
    "TrafficWriter": "traffic",
    "record_feedback": "feedback",
    "feedback_of": "feedback",
    "submit_verdict": "reviews",
    "pending_reviews": "reviews",
    "review_counts": "reviews",
    "traffic_dataset": "traffic",
    "refit_policy": "refit",
    "promotion_test": "promote",
    "rollback": "promote",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'tradeoff.policies.loop' has no attribute {name!r}")
    return getattr(import_module(f"tradeoff.policies.loop.{_WHERE[name]}"), name)
