"""Traffic mixes: the share of each task in the traffic a guarantee is promised for.

"Accuracy >= 90% of baseline" is a statement about some population of requests. By default the
promise is tested on the training items as recorded (an i.i.d. sample of the population they
come from). But the traffic a policy serves often has another task mix than the data it was
fitted on: a benchmark's test split balanced per task, a team whose traffic is mostly code.
A policy that saves on the tasks it routes cheaply and pays back on others meets the
requirement on one mix and misses it on another, even when every per-task estimate is right.

A `TrafficMix` names target shares per task. The constraint is then tested on the training
items *reweighted to that mix*: a stratified estimate sum_t q_t x mean_t(diff) with variance
sum_t q_t^2 x var_t / n_t (the mix is taken as given; per-task variances are pooled a little
toward the overall within-task variance so a small task's lucky zero variance does not count as
certainty), and a t quantile at the mix's effective sample size. Tasks of the mix that no
training item has cannot be vouched for: they are left out, and the fit says so.

No bound claims certainty from a sample that merely looks certain. The t bound of 19 items on
which a policy and its baseline are both right is the mean itself (zero sample variance), so
"accuracy >= 95% of baseline" would be accepted "at 100%" from 19 items, where an exact binomial
(Clopper-Pearson) bound on the share of items the policy gets wrong only reaches 85%. Where the
range of a paired difference is known (accuracy: item scores lie in [0, 1], so score_policy -
c x score_baseline >= -c) the bound therefore adds one pseudo-item at the worst value the
difference can take before the t bound (under a reweighted mix, one pseudo-item for the whole
sample: its deviation joins the pooled within-task variance and the mean moves by one item's
weight, so many small tasks do not cost many items' worth): 19 perfect items
then bound "95% of baseline" at about -9 points, not +5, while n items move a bound by about
(mean - worst) / n, under 2/n. It is conservative by construction (a worst case is never better than the item it stands
for), smooth in n (no threshold), and costs large samples almost nothing. Cost carries no
known range, so its bound is the plain t bound.

Where the mix comes from (`fit_policy(traffic_mix=...)`, `tradeoff fit --traffic-mix`):

- `auto` (default): the recorded mix *and* the held-out items' task mix, both must hold, when
  the two differ: a chi-square test of homogeneity of the training and held-out task counts
  rejects "one mix" at `SAME_MIX_P`. Only the held-out items' task labels are read (never their
  outcomes, which stay unseen until the report): they are the stand-in for the traffic to be
  served. On a seeded hash split the two mixes agree up to noise, and the reweighted bound
  (which pools variances over every task and takes a t at the effective sample size) would
  only cost savings there: the recorded mix alone is tested. On a named test split with its own
  mix (LLMRouter's is 50 items per task over 10 of its 14 tasks) the test rejects, and the
  second mix is what keeps the promise there.
- `recorded`: the training items' own mix only (the i.i.d. assumption).
- `TASK=SHARE,...`: a declared mix (e.g. from the traffic a team serves), alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from tradeoff.policies.errors import DataError

POOL_DOF = 2.0  # pseudo degrees of freedom pulling a task's variance toward the pooled one
SAME_MIX_P = 0.05  # below this p-value the held-out task mix differs from the training one
AUTO, RECORDED = "auto", "recorded"


@dataclass(frozen=True)
class TrafficMix:
    """Target shares per task (summing to 1 over the tasks the training items cover)."""

    name: str  # "recorded", "held-out" or "declared"
    shares: dict[str, float]  # empty for the recorded mix (the items as they are)
    uncovered: dict[str, float]  # target shares of tasks no training item has (left out)

    @property
    def recorded(self) -> bool:
        return not self.shares

    def on(self, tasks: np.ndarray) -> Strata:
        """This mix over items with these `tasks` (computed once per item set)."""
        if self.recorded:
            return Strata(self, None, np.ones(1))
        names = sorted(t for t in self.shares if self.shares[t] > 0)
        pos = {t: g for g, t in enumerate(names)}
        group = np.array([pos.get(str(t), -1) for t in tasks], dtype=int)
        present = np.bincount(group[group >= 0], minlength=len(names)) > 0
        share = np.array([self.shares[t] for t in names]) * present
        total = share.sum()
        return Strata(self, group, share / total if total > 0 else share)

    def describe(self) -> str:
        if self.recorded:
            return "recorded task mix (the training items as they are)"
        top = sorted(self.shares.items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{t} {s:.0%}" for t, s in top[:4]) + (", ..." if len(top) > 4 else "")
        return f"{self.name} task mix ({text})"


RECORDED_MIX = TrafficMix(RECORDED, {}, {})


def held_out_mix(train_tasks: Iterable[object], test_tasks: Iterable[object]) -> TrafficMix:
    """The held-out items' task frequencies (their labels only)."""
    return _mix("held-out", Counter(str(t) for t in test_tasks), train_tasks)


def declared_mix(spec: str, train_tasks: Iterable[object]) -> TrafficMix:
    """`TASK=SHARE,...` (shares need not sum to 1); an unknown task is a clear error."""
    known = sorted({str(t) for t in train_tasks})
    counts: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        task, sep, value = part.rpartition("=")
        try:
            share = float(value) if sep else float("nan")
        except ValueError:
            share = float("nan")
        if not task or not share >= 0:
            raise DataError(
                f"--traffic-mix: {part!r} is not TASK=SHARE (e.g. math=0.3,code=0.7), "
                f"'{AUTO}' or '{RECORDED}'"
            )
        if task not in known:
            raise DataError(
                f"--traffic-mix names task {task!r}, which has no training items "
                f"(tasks: {', '.join(known[:20])}{', ...' if len(known) > 20 else ''})"
            )
        counts[task] = counts.get(task, 0.0) + share
    if not sum(counts.values()) > 0:
        raise DataError("--traffic-mix: give at least one task a share above 0")
    return _mix("declared", counts, train_tasks)


def _mix(name: str, counts: Mapping[str, float], train_tasks: Iterable[object]) -> TrafficMix:
    seen = {str(t) for t in train_tasks}
    total = float(sum(counts.values()))
    shares = {t: c / total for t, c in sorted(counts.items()) if t in seen and c > 0}
    uncovered = {t: c / total for t, c in sorted(counts.items()) if t not in seen and c > 0}
    covered = sum(shares.values())
    return TrafficMix(name, {t: s / covered for t, s in shares.items()}, uncovered)


def resolve_mixes(
    spec: str | None, train_tasks: Iterable[object], test_tasks: Iterable[object]
) -> list[TrafficMix]:
    """The mixes every accuracy and cost constraint must hold on; the last one is the target
    (the objective is measured on it)."""
    spec = (spec or AUTO).strip()
    if spec == RECORDED:
        return [RECORDED_MIX]
    if spec == AUTO:
        train_tasks, test_tasks = list(train_tasks), list(test_tasks)
        mix = held_out_mix(train_tasks, test_tasks)
        # Training items of one task (or none in common): reweighting changes nothing.
        many = len({str(t) for t in train_tasks}) > 1 and mix.shares
        if not many or not mixes_differ(train_tasks, test_tasks):
            return [RECORDED_MIX]
        return [RECORDED_MIX, mix]
    return [declared_mix(spec, train_tasks)]


def mixes_differ(train_tasks: Iterable[object], test_tasks: Iterable[object]) -> bool:
    """Whether the two items' task frequencies differ beyond sampling noise (chi-square test of
    homogeneity at `SAME_MIX_P`); a task the held-out items have and training lacks always
    counts as a difference (the held-out mix then also reports it as uncovered)."""
    train, test = Counter(str(t) for t in train_tasks), Counter(str(t) for t in test_tasks)
    if not train or not test:
        return False
    if set(test) - set(train):
        return True
    names = sorted(train)
    table = np.array([[train[t] for t in names], [test.get(t, 0) for t in names]], dtype=float)
    if len(names) < 2:
        return False
    p = float(stats.chi2_contingency(table, correction=False)[1])
    return p < SAME_MIX_P


@dataclass(frozen=True)
class Strata:
    """A mix laid over one item set: each item's task group and each group's target share
    (renormalised over the groups present); `group` is None for the recorded mix."""

    mix: TrafficMix
    group: np.ndarray | None
    share: np.ndarray

    def bound(self, diff: np.ndarray, level: float, worst: float | None = None) -> float:
        """One-sided `level` lower confidence bound of the mean of `diff` (n,) under the mix
        (the recorded mix: the plain i.i.d. t bound); NaN when no item is in the mix. With
        `worst`, the lowest value `diff` can take, one pseudo-item at it joins the sample first
        (under a reweighted mix, the whole sample's one): see the module docstring."""
        d = np.asarray(diff, dtype=float)
        if worst is not None and len(d) and self.group is None:
            d = np.append(d, worst)
        if self.group is None:
            n = len(d)
            spread = float(d.std(ddof=1)) / np.sqrt(n) if n > 1 else np.inf
            return float(d.mean()) - t_quantile(1 - level, max(n - 1, 1)) * spread
        inside = self.group >= 0
        if not inside.any():
            return float("nan")
        g, d = self.group[inside], d[inside]
        k = len(self.share)
        counts = np.bincount(g, minlength=k).astype(float)
        has = counts > 0
        means = np.bincount(g, weights=d, minlength=k) / np.maximum(counts, 1)
        squares = np.bincount(g, weights=(d - means[g]) ** 2, minlength=k)
        dof = np.maximum(counts - 1, 0)
        total_sq, total_dof = float(squares.sum()), float(dof.sum())
        shift = 0.0
        if worst is not None:
            # One pseudo-item for the whole sample (not one per task: with many small tasks
            # that would be many items' worth): its deviation joins the pooled variance, and
            # the mean moves by one item's weight toward it.
            size, overall = float(len(d)), float(d.mean())
            total_sq += (worst - overall) ** 2 * size / (size + 1)
            total_dof += 1
            shift = (overall - worst) / (size + 1)
        pooled = total_sq / total_dof if total_dof > 0 else float(d.var())
        var = (squares + POOL_DOF * pooled) / (dof + POOL_DOF)
        share, counts, means, var = self.share[has], counts[has], means[has], var[has]
        spread = float(np.sqrt((share**2 * var / counts).sum()))
        n_eff = 1.0 / float((share**2 / counts).sum())
        quantile = t_quantile(1 - level, max(n_eff - 1, 1))
        return float((share * means).sum()) - shift - quantile * spread

    def mean(self, values: np.ndarray) -> float:
        """The mean of `values` (n,) under the mix."""
        v = np.asarray(values, dtype=float)
        if self.group is None or not (self.group >= 0).any():
            return float(v.mean()) if len(v) else float("nan")
        inside = self.group >= 0
        k = len(self.share)
        counts = np.bincount(self.group[inside], minlength=k)
        sums = np.bincount(self.group[inside], weights=v[inside], minlength=k)
        has = counts > 0
        return float((self.share[has] * sums[has] / counts[has]).sum())


@lru_cache(maxsize=4096)
def t_quantile(p: float, dof: float) -> float:
    """Student's t quantile, remembered: acceptance asks for the same few thousands of times, and
    each scipy call costs more than the bound around it."""
    return float(stats.t.ppf(p, dof))


@lru_cache(maxsize=4096)
def z_quantile(p: float) -> float:
    """The standard normal quantile, remembered (as `t_quantile`)."""
    return float(stats.norm.ppf(p))
