"""The loop: traffic -> graded pairs -> live guarantee monitor -> refit -> guarded promotion.

One module per step, each with a one-method contract: `grading` (PairGrader.grade), `monitor`
(Monitor.update), `traffic` (TrafficWriter.record), `status` (Watch, loop_status), `refit`
(refit_policy) and `promote` (promotion test, promote, rollback). The proxy drives the first
three (router/shadow.py, router/feedback.py, router/live.py); the CLI the rest.
"""

from policies.loop.grading import Pair, PairGrader, PairScore, build_pair_grader
from policies.loop.monitor import Monitor, Reading
from policies.loop.status import Watch, load_watch, loop_status, required_share
from policies.loop.traffic import GradedPair, TrafficWriter, record_feedback, traffic_dataset

__all__ = [
    "GradedPair",
    "Monitor",
    "Pair",
    "PairGrader",
    "PairScore",
    "Reading",
    "TrafficWriter",
    "Watch",
    "build_pair_grader",
    "load_watch",
    "loop_status",
    "record_feedback",
    "required_share",
    "traffic_dataset",
]
