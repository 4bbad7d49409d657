"""Cold start: from a policy that is only the team's current model to a proven, cheaper one,
from its production traffic alone.

`explore(store, name, baseline, candidates, requirement)` (`tradeoff explore`) stores version 1
of `name`, the single model `baseline`, serving, with the requirement, and an `explored` event
naming the candidates (policies/versions.py). A proxy serving `name` with `--shadow RATE` asks,
for each sampled request and after the client has its answer, every candidate still in the race
(router/loop/shadow.py), and grades each answer against the baseline's with the pair grader
(policies/loop/grading.py). Each graded answer is an outcome of the request's item in
`traffic-<name>` (policies/loop/traffic.py).

**The race** (`policies.loop.explorer.Explorer`) is adaptive evaluation's (`evals.adaptive.race.Race` and its
anytime-valid tests by betting), fed the shadowed requests in the order they reach it: a proxy's
own graded answers at once, other replicas' as it reads them from the store (the order depends on
timing, never on the answers, so the tests hold in it). A candidate is dropped once it is, with
95% confidence, of no use for the requirement (dominated, or below the floor on every task). A
dropped candidate gets no more shadow calls, so the shadow budget goes where the decision is
still open; and a proxy asks a candidate at most `EXPLORE_AHEAD` times ahead of the answers its
race has seen, so however slowly answers come back, a drop costs few calls more. A drop is
recorded in the store once (`adaptive_drops`, dataset `traffic-<name>`: the first process to
decide it records it; every process reads it, and the recorded one wins), so replicas make one
decision, and the refit leaves the candidate out as `fit` leaves out one adaptive evaluation
dropped. (Groups of small tasks are re-formed as tasks grow; that can only cost a drop, never what
a promotion must prove: the refit's own test decides that.)

`tradeoff refit --policy NAME --promote` fits on the traffic outcomes (policies/loop/refit.py).
Once a promoted version routes beyond its baseline, the open candidates are asked on
`LATER_SHARE` of the sampled requests only: a model that drifts, or a candidate added later
(`tradeoff explore NAME --candidates C` again), is still seen.

**What is proven so far** (`policies.loop.proven`, in `tradeoff status`): for each open candidate,
serving it alone in place of the baseline, on the requests where both were measured: its kept
accuracy with the live monitor's anytime-valid lower bound (policies/loop/monitor.py; 95% split
over the open candidates) and its savings with a 95% interval. It is proven when the bound meets
the required share and it costs less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeoff.evals.adaptive.run import requirement_rules
from tradeoff.evals.errors import UsageError
from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact, insert_artifact
from tradeoff.policies.families.base import create_policy
from tradeoff.policies.requirement import parse_requirement
from tradeoff.policies.versions import (
    append_event,
    latest_events,
    latest_version,
    record_version,
    serving_all,
)

__all__ = ["EVENT", "EXPLORE_AHEAD", "LATER_SHARE", "Exploration", "explorations", "explore"]

EVENT = "explored"
LATER_SHARE = 0.25  # of sampled requests, once a promoted version routes beyond the baseline
# Calls a proxy makes of a candidate ahead of the answers the race has read: a drop then costs
# at most this many calls more, however long answers take to reach the store and the race.
EXPLORE_AHEAD = 20


@dataclass(frozen=True)
class Exploration:
    """What `tradeoff explore` recorded for a policy name."""

    name: str
    baseline: str
    candidates: tuple[str, ...]
    requirement: str
    version: int  # the version serving when it was recorded

    @property
    def models(self) -> list[str]:
        return [self.baseline, *self.candidates]


def explorations(con: Any, name: str | None = None) -> dict[str, Exploration]:
    """The latest exploration of every policy name (or of `name`)."""
    out = {}
    for policy, (version, detail) in latest_events(con, EVENT, name).items():
        out[policy] = Exploration(
            policy,
            str(detail["baseline"]),
            tuple(detail["candidates"]),
            str(detail["requirement"]),
            version,
        )
    return out


def explore(
    store: Store, name: str, baseline: str, candidates: list[str], requirement: str
) -> tuple[Exploration, bool]:
    """Store version 1 of `name` (the baseline alone, serving) and its exploration; for a name
    already explored with this baseline, add the candidates. Returns (it, whether new)."""
    req = parse_requirement(requirement)
    floors, dominance = requirement_rules(str(req))
    if not floors and not dominance:
        raise UsageError(
            f'"{req}" gives exploring nothing to drop candidates by; give an accuracy floor '
            '(e.g. "accuracy >= 95% of baseline") or only accuracy and cost'
        )
    wanted = [c for c in dict.fromkeys(c.strip() for c in candidates) if c and c != baseline]
    if not wanted:
        raise UsageError("--candidates: name at least one model other than the baseline")
    with store.transaction() as con:
        known = latest_version(con, name)
        earlier = explorations(con, name).get(name)
        serving = serving_all(con).get(name)
        if known is not None and (earlier is None or earlier.baseline != baseline):
            raise UsageError(
                f"policy {name!r} already exists"
                + ("" if earlier is None else f" exploring against {earlier.baseline}")
                + "; explore under a new name"
            )
        if earlier is not None and serving is not None:
            everyone = list(dict.fromkeys([*earlier.candidates, *wanted]))
            found = Exploration(name, baseline, tuple(everyone), str(req), serving.version)
            append_event(con, name, serving.version, EVENT, _detail(found))
            return found, False
        artifact = PolicyArtifact.from_policy(
            name, create_policy("single", {"model": baseline}), requirement=str(req),
            baseline=baseline,
        )  # fmt: skip
        pid = insert_artifact(con, artifact)
        version = record_version(con, name, pid, "explore", detail={"candidates": wanted})
        append_event(con, name, version, "promoted", {"by": "explore"})
        found = Exploration(name, baseline, tuple(wanted), str(req), version)
        append_event(con, name, version, EVENT, _detail(found))
    return found, True


def _detail(e: Exploration) -> dict[str, Any]:
    return {"baseline": e.baseline, "candidates": list(e.candidates), "requirement": e.requirement}
