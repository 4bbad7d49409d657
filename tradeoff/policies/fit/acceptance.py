"""Accepting candidates so that the guarantee survives the search that found them.

A candidate is accepted when every constraint holds at a one-sided lower confidence bound on the
training items' out-of-fold decisions, *paired* with the baseline on the same items: for
`accuracy >= 95% of baseline` the bound is on the mean of score_policy(i) - 0.95 x
score_baseline(i), whose variance is far smaller than either mean's when the two mostly agree.
(Several constraints must each hold at the level: an intersection-union test needs no split.)

Searching many candidates would make the cheapest one that passes a 95% bound an optimist's pick.
The error budget `ALPHA` is split over the families that have candidates (weighted Bonferroni:
single models get `SINGLE_SHARE`, the routing families share the rest evenly), and within a
family

- an *ordered* family (cost-weight paths, most accurate first, or cheapest first for a cost
  ceiling) splits its level over its paths, and tests each path as a fixed sequence
  (Learn-then-Test): each candidate at the path's full level, stopping at the first that fails,
  which keeps the error at that level however fine the grid;
- an unordered set splits the family's level over its candidates.

With probability at least 1 - ALPHA every accepted candidate meets the requirement on the
population the training items come from, so picking the best accepted one (by the objective's
point estimate) keeps the promise.

Traffic mixes (`policies.fit.mix`): an accuracy or cost constraint is tested, at the same level,
on each mix given: the training items as recorded, and reweighted to a target task mix (by
default the held-out items' mix beside the recorded one). Every bound must clear
(intersection-union again: no split of the budget), so the promise covers each mix.
Bootstrapped metrics (p95 latency, reliability) are tested on the recorded mix only.

`on every task` (`accuracy >= 90% of baseline on every task`): the clause is tested on each
task's items alone, each at the candidate's full level (intersection-union once more: "holds on
every task" is rejected unless every task's test rejects, so no split is needed, and the bound
of a small task is wide by itself). A task the candidate leaves wholly to the baseline keeps
a relative floor by definition and spends no test. The binding (lowest) task's bound is the
clause's; `Tested.task_bounds` keeps every task's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _replace

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.fit.candidates import Candidate, FamilyCandidates
from tradeoff.policies.fit.mix import RECORDED_MIX, Strata, TrafficMix, z_quantile
from tradeoff.policies.replay.metrics import Bootstrap, metric_point, metric_samples
from tradeoff.policies.replay.simulate import Replay, VerdictSource, replay
from tradeoff.policies.replay.tasks import task_groups
from tradeoff.policies.requirement import Constraint, Requirement

ALPHA = 0.05
UNORDERED_GRID = 16  # a path tested as an unordered set (mixed constraints) is thinned to this
SINGLE_SHARE = 0.1  # of the error budget, for the single-model family beside routing families


@dataclass
class Tested:
    candidate: Candidate
    replay: Replay
    level: float  # one-sided error level of its test
    margins: dict[str, float] = field(default_factory=dict)  # lower bound of (value - bound)
    bounds: dict[str, float] = field(default_factory=dict)  # the confidence bound, in units
    # per `on every task` clause: {task: its bound, NaN where it holds by definition}
    task_bounds: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def servable(self) -> bool:
        """Every item went to a model able to serve it (models.yaml capabilities)."""
        return self.replay.unservable is None or not bool(self.replay.unservable.any())

    @property
    def ok(self) -> bool:
        return self.servable and all(np.isfinite(m) and m >= 0 for m in self.margins.values())


def testing_order(req: Requirement) -> str:
    """How a cost-weight path is tested: "dear_first" when every constraint is an accuracy
    floor, "cheap_first" when every one is a cost ceiling, "unordered" otherwise, "none"
    without constraints (nothing to test)."""
    kinds = set()
    for c in req.constraints:
        if c.metric == "accuracy" and c.lower_bound:
            kinds.add("dear_first")
        elif c.metric == "cost" and not c.lower_bound:
            kinds.add("cheap_first")
        else:
            kinds.add("unordered")
    if not kinds:
        return "none"
    return kinds.pop() if len(kinds) == 1 else "unordered"


def constraint_bound(
    c: Constraint,
    r: Replay,
    base: Replay,
    boot: Bootstrap,
    level: float,
    strata: Sequence[Strata] = (),
) -> tuple[float, float]:
    """(margin, bound): the one-sided `level` confidence bound of (value - required) (>= 0:
    holds), and of the value itself in the constraint's units (a share of the baseline's value
    for a relative constraint); for accuracy and cost, the lowest over the traffic mixes laid
    over the items in `strata` (default: the items as recorded). NaN when the metric was not
    recorded."""
    ref_point = metric_point(c.metric, base) if c.relative else 1.0
    required = c.value * ref_point if c.relative else c.value
    if c.metric in PER_ITEM:
        mine = per_item(c.metric, r)
        ref = per_item(c.metric, base) if c.relative else 0.0
        diff = mine - c.value * ref if c.relative else mine - c.value
        diff = diff if c.lower_bound else -diff
        worst = _worst_accuracy_diff(c) if c.metric in BOUNDED else None
        margin = np.inf
        for mix in strata or (RECORDED_MIX.on(np.zeros(0)),):
            low = mix.bound(diff, level, worst)
            if not low >= margin:  # the binding mix reports the baseline's value under it
                margin = low
                ref_point = mix.mean(np.asarray(ref)) if c.relative else 1.0
                required = c.value * ref_point if c.relative else c.value
            if np.isnan(margin):
                break
    else:
        mine_s = metric_samples(c.metric, r, boot)
        ref_s = metric_samples(c.metric, base, boot) if c.relative else None
        diff_s = mine_s - c.value * ref_s if ref_s is not None else mine_s - c.value
        diff_s = diff_s if c.lower_bound else -diff_s
        if np.isnan(diff_s).all():
            return float("nan"), float("nan")
        point = metric_point(c.metric, r) - required
        point = point if c.lower_bound else -point
        margin = point - z_quantile(1 - level) * float(np.nanstd(diff_s, ddof=1))
    value = required + (margin if c.lower_bound else -margin)
    return margin, value / ref_point if c.relative and ref_point else value


# Metrics that are means of a per-item value (bounded by the traffic mixes' stratified bound),
# and those whose per-item values lie in [0, 1] (a pseudo-item at the worst value joins them).
PER_ITEM = ("accuracy", "cost", "human_review")
BOUNDED = ("accuracy", "human_review")


def per_item(metric: str, r: Replay) -> np.ndarray:
    """The per-item values whose mean is `metric`."""
    if metric == "accuracy":
        return r.score
    return r.cost if metric == "cost" else r.review


def _worst_accuracy_diff(c: Constraint) -> float:
    """The lowest value of a [0, 1] metric constraint's paired difference (accuracy: item
    scores; human_review: 0 or 1 per request): the pseudo-item of `TrafficMix.bound` (see
    `policies.fit.mix`)."""
    corners = [(mine, ref) for mine in (0.0, 1.0) for ref in (0.0, 1.0)]
    values = [mine - c.value * (ref if c.relative else 1.0) for mine, ref in corners]
    return min(values) if c.lower_bound else min(-v for v in values)


def accept(
    req: Requirement,
    families: list[FamilyCandidates],
    train: Outcomes,
    verdicts: VerdictSource | None,
    base: Replay,
    boot: Bootstrap,
    alpha: float = ALPHA,
    point_estimate: bool = False,
    mixes: Sequence[TrafficMix] = (),
) -> tuple[list[Tested], list[Tested]]:
    """(accepted, every tested candidate); see the module docstring. `point_estimate` accepts
    on point estimates instead (no guarantee: for measuring what the guarantee costs); `mixes`
    are target task mixes every accuracy and cost constraint must also hold on."""
    active = [f for f in families if f.candidates]
    strata = [mix.on(train.tasks) for mix in mixes]
    groups = task_groups(train.tasks) if any(c.per_task for c in req.constraints) else []
    accepted: list[Tested] = []
    tested: list[Tested] = []
    for fam in active:
        family_level = alpha * _weight(fam, active)
        if point_estimate:
            for cand in fam.candidates:
                t = _test(req, cand, train, verdicts, base, boot, 0.5, strata, groups)
                tested.append(t)
                if t.ok:
                    accepted.append(t)
            continue
        ordered = fam.ordered and testing_order(req) != "unordered"
        paths = fam.paths if ordered else [_thin(fam)]
        size = len(paths) if ordered else len(paths[0])
        level = family_level / size
        for path in paths:
            for cand in path:
                t = _test(req, cand, train, verdicts, base, boot, level, strata, groups)
                tested.append(t)
                if t.ok:
                    accepted.append(t)
                elif ordered and t.servable:
                    break  # fixed sequence: nothing after a failure may be accepted
                # An unservable candidate is skipped, not failed: whether a model can serve an
                # item is a fact of the items' needs, not a noisy test, so it spends no error.
    return accepted, tested


def _weight(fam: FamilyCandidates, active: list[FamilyCandidates]) -> float:
    return family_share(fam.family, [f.family for f in active])


def family_share(family: str, active: Sequence[str]) -> float:
    """A family's share of the error budget among the `active` ones (weighted Bonferroni: the
    shares sum to one). Single models get a small share beside routing families: a single model
    that meets the requirement clearly passes at it anyway, and the routing paths usually reach
    its savings."""
    if len(active) == 1:
        return 1.0
    singles = "single" in active
    if family == "single":
        return SINGLE_SHARE
    return (1.0 - (SINGLE_SHARE if singles else 0.0)) / (len(active) - singles)


def _thin(fam: FamilyCandidates) -> list[Candidate]:
    """An ordered family tested as an unordered set: each path thinned to a few candidates."""
    if not fam.ordered:
        return fam.candidates
    out = []
    for path in fam.paths:
        if len(path) > UNORDERED_GRID:
            picks = np.unique(np.round(np.linspace(0, len(path) - 1, UNORDERED_GRID)).astype(int))
            path = [path[i] for i in picks]
        out += path
    return out


def _test(
    req: Requirement,
    cand: Candidate,
    train: Outcomes,
    verdicts: VerdictSource | None,
    base: Replay,
    boot: Bootstrap,
    level: float,
    strata: Sequence[Strata] = (),
    groups: Sequence[tuple[str, np.ndarray]] = (),
) -> Tested:
    """`groups`: (task, its items) for `on every task` clauses (`task_groups`)."""
    r = replay(train, cand.routes, verdicts)
    t = Tested(cand, r, level)
    for c in req.constraints:
        if c.per_task:
            t.task_bounds[str(c)] = {}
            t.margins[str(c)], t.bounds[str(c)] = _per_task(c, t, groups, base, boot)
        else:
            t.margins[str(c)], t.bounds[str(c)] = constraint_bound(c, r, base, boot, level, strata)
    return t


def _per_task(
    c: Constraint,
    t: Tested,
    groups: Sequence[tuple[str, np.ndarray]],
    base: Replay,
    boot: Bootstrap,
) -> tuple[float, float]:
    """(margin, bound) of an `on every task` clause: its lowest over the tasks."""
    overall = _replace(c, per_task=False)
    chain = t.candidate.routes.chain
    on_base = (chain[:, 0] == base.final) & (chain[:, 1:] < 0).all(axis=1)
    margin, bound = np.inf, np.nan
    for task, idx in groups:
        if c.baseline_holds and on_base[idx].all():
            t.task_bounds[str(c)][task] = float("nan")  # the baseline itself: holds as stated
            continue
        m, b = constraint_bound(overall, t.replay.take(idx), base.take(idx), boot, t.level)
        t.task_bounds[str(c)][task] = b
        if not m >= margin:
            margin, bound = m, b
    if margin == np.inf:  # every task left to the baseline
        return 0.0, c.value if c.relative else float("nan")
    return margin, bound


def objective_value(req: Requirement, r: Replay, unit: float, mix: Strata | None = None) -> float:
    """Lower is better; cost in units of `unit`, latency in seconds; accuracy and cost under
    the traffic `mix` when given (the traffic the policy is meant for)."""
    metric = req.objective.metric
    value = metric_point(metric, r)
    if mix is not None and metric in ("accuracy", "cost"):
        value = mix.mean(r.score if metric == "accuracy" else r.cost)
    if metric == "cost":
        value /= unit
    elif metric == "p95_latency":
        value /= 1000.0
    return value if req.objective.direction == "minimize" else -value
