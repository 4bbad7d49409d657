"""The live guarantee monitor: is a served policy keeping the share of its baseline's accuracy
that its requirement promises? Anytime-valid, so it may be watched after every pair.

**What is measured.** Each shadow pair gives two scores in [0, 1] from one grader: r for the
answer the policy routed to, s for the baseline's answer to the same request (see
`policies.loop.grading`: agreement r = match, s = 1; pairwise judge r = win share, s = 1 - r;
a reference-free verifier scores both; a pair whose routed model *is* the baseline is free and
scores r = s = 1). The **kept accuracy** is K = E[r] / E[s], the routed answers' accuracy as a
share of the baseline's on the same requests, estimated by sum(r) / sum(s). The requirement
`accuracy >= R of baseline` holds when K >= R, that is when E[r - R s] >= 0.

**The interval.** For every value k on a grid over [0.25, 1.5] (plus R itself) two betting
e-processes (`policies.loop.betting`) test "K <= k" (betting on r - k s) and "K >= k" (betting
on k s - r). The one-sided 95% lower bound is the largest k below which every "K <= k" was
rejected at level alpha = 0.05; the upper bound the smallest k above which every "K >= k" was
rejected at level alpha / 2. Both only ever tighten. If the pairs are independent with one
kept accuracy K, P(K < lower bound at any time) <= 5% and P(K > upper bound at any time) <= 2.5%.

**The states** (per policy version, from its promotion on):
- `ok`: "K <= R" was rejected (the lower bound meets the requirement). If every pair's
  conditional mean violates the requirement (E[r - R s | past] < 0 throughout), P(ever ok) <= 5%.
- `violated`: an alarm of the change detector below. It stays until another version is
  promoted or this one is rolled back (a new epoch makes a new monitor).
- `collecting`: neither yet.

**The change detector** (why a long good history cannot hide a drift). Besides the process
started at the promotion (the interval's "K >= R" test, level alpha/2), a fresh "K >= R"
process starts every `segment` pairs: segment j >= 2 starts after (j - 1) * segment pairs and
raises the alarm when its wealth reaches 1 / alpha_j, alpha_j = alpha / (j (j + 1)). The levels
sum to alpha/2 + alpha/2, so **if every pair meets the requirement in conditional expectation
(E[r - R s | past] >= 0 at every step, drifting or not), P(violated is ever raised) <= 5%** over
an unbounded run (Ville's inequality and a union bound). A segment is tracked for `keep`
segments' worth of pairs, ten times longer if it starts on a multiple of ten segments, a
hundred times on a multiple of a hundred, and so on (dropping a test can only remove alarms):
a recent drop is watched by many short segments, a slow one by a few long ones. A drop after a
long history is caught by the first segments that start after it, which carry no old evidence;
they pay only the log(j (j + 1)) of their level. With the defaults (segments of 50 pairs,
`keep` 20) at R = 0.95: 300 agreeing pairs give `ok` (in 96); an always-wrong routed model is
`violated` 28 pairs after 20,000 good ones; benchmarks/bench_loop.py measures drops of 5 and
10 points and the false-alarm rate.

After an alarm the reported figures cover the pairs since the alarming segment began (the
detected change), so a `violated` policy shows an upper bound below its requirement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tradeoff.policies.loop.betting import BetBank

__all__ = ["ALPHA", "Monitor", "Reading"]

ALPHA = 0.05
# Candidate kept accuracies: by half a point from 0.5 to 1.2, coarser out to 0.25 and 1.5
# (the requirement is added exactly).
GRID = np.round(
    np.concatenate(
        [np.arange(0.25, 0.5, 0.05), np.arange(0.5, 1.2, 0.005), np.arange(1.2, 1.501, 0.05)]
    ),
    6,
)
BLOCK = 512  # pairs processed per vectorised step


@dataclass(frozen=True)
class Reading:
    """What the monitor says now."""

    state: str  # collecting | ok | violated
    pairs: int  # pairs since the promotion
    window_pairs: int  # pairs behind the figures (since the change, once violated)
    kept_accuracy: float | None
    lower: float | None
    upper: float | None
    alarm_at: int | None = None  # pair count when the alarm rang
    change_at: int | None = None  # pair count where the alarming segment began


class _Interval:
    """The two-sided grid of tests over the pairs of one window."""

    def __init__(self, required: float | None, alpha: float) -> None:
        grid = GRID if required is None else np.unique(np.append(GRID, required))
        self.grid = grid
        self.lower = BetBank(np.ones_like(grid), -grid, grid, np.full(grid.shape, -np.log(alpha)))
        self.upper = BetBank(
            -np.ones_like(grid), grid, np.ones_like(grid), np.full(grid.shape, -np.log(alpha / 2))
        )
        self.sum_r = 0.0
        self.sum_s = 0.0
        self.n = 0
        # Every baseline score so far was 1 (the baseline's answer is the reference, as with
        # agreement): K is then the mean of r, a share that cannot exceed 1.
        self.reference = True

    def extend(self, r: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed pairs; the first crossing of each lower and upper test here (-1: none)."""
        self.sum_r += float(r.sum())
        self.sum_s += float(s.sum())
        self.n += len(r)
        self.reference = self.reference and bool((s == 1.0).all())
        return self.lower.extend(r, s), self.upper.extend(r, s)

    def bounds(self) -> tuple[float | None, float | None]:
        """(lower, upper): every grid value below `lower` and above `upper` is rejected.

        No pair yet: (None, None); nothing rejected above: upper None (unbounded).
        """
        if self.n == 0:
            return None, None
        below = _run_length(self.lower.rejected)
        above = _run_length(self.upper.rejected[::-1])
        lower = float(self.grid[below - 1]) if below else 0.0
        upper = float(self.grid[len(self.grid) - above]) if above else None
        if self.reference:  # a share of a perfect reference: never above 100%
            upper = 1.0 if upper is None else min(upper, 1.0)
            lower = min(lower, 1.0)
        return lower, upper

    def point(self) -> float | None:
        return self.sum_r / self.sum_s if self.sum_s > 0 else None


class Monitor:
    """One policy version's monitor. Feed it pairs in the order they were graded."""

    def __init__(
        self, required: float | None, *, segment: int = 50, keep: int = 20, alpha: float = ALPHA
    ) -> None:
        self.required = required
        self.segment, self.keep, self.alpha = segment, keep, alpha
        self.n = 0
        self.window = _Interval(required, alpha)
        self.alarm_at: int | None = None
        self.change_at: int | None = None
        self.ok_at: int | None = None
        self._r = np.empty(1024)
        self._s = np.empty(1024)
        # Change-detector segments at the requirement, in slots that are reused on expiry.
        slots = keep * 8
        req = 1.0 if required is None else required
        self._segments = BetBank(
            -np.ones(slots), np.full(slots, req), np.ones(slots), np.full(slots, np.inf)
        )
        self._segments.rejected[:] = True  # an empty slot is never updated
        self._start = np.full(slots, -1)
        self._until = np.full(slots, -1)

    @property
    def state(self) -> str:
        if self.alarm_at is not None:
            return "violated"
        return "ok" if self.ok_at is not None else "collecting"

    def update(self, routed: float, baseline: float) -> str:
        """Count one graded pair; return the state after it."""
        self.extend(np.array([routed]), np.array([baseline]))
        return self.state

    def extend(self, routed: np.ndarray, baseline: np.ndarray) -> None:
        """Count many pairs at once (the same result as one `update` each, only faster)."""
        r = np.clip(np.asarray(routed, dtype=float), 0.0, 1.0)
        s = np.clip(np.asarray(baseline, dtype=float), 0.0, 1.0)
        for i in range(0, len(r), BLOCK):
            self._block(r[i : i + BLOCK], s[i : i + BLOCK])

    def _keep_pairs(self, r: np.ndarray, s: np.ndarray) -> None:
        end = self.n + len(r)
        if end > len(self._r):
            size = max(end, 2 * len(self._r))
            self._r, self._s = np.resize(self._r, size), np.resize(self._s, size)
        self._r[self.n : end], self._s[self.n : end] = r, s

    def _block(self, r: np.ndarray, s: np.ndarray) -> None:
        start = self.n
        self._keep_pairs(r, s)
        first_low, first_up = self.window.extend(r, s)
        self.n += len(r)
        at = self._required_index()
        if self.alarm_at is not None or at is None:
            return  # violated is final; the window goes on counting the pairs since the change
        if self.ok_at is None and first_low[at] >= 0:
            self.ok_at = start + int(first_low[at]) + 1
        alarms = [(int(first_up[at]), 0)] if first_up[at] >= 0 else []
        i = 0
        while i < len(r) and (not alarms or i <= min(alarms)[0]):
            n = start + i
            if n > 0 and n % self.segment == 0:
                self._start_segment(n)
            take = self.segment - n % self.segment  # up to the next segment boundary
            first = self._segments.extend(r[i : i + take], s[i : i + take])
            alarms += [(i + int(first[k]), int(self._start[k])) for k in np.flatnonzero(first >= 0)]
            i += take
        if alarms:
            index, change = min(alarms)
            self.alarm_at = start + index + 1
            self.change_at = change
            if change > 0:
                self.window = _Interval(self.required, self.alpha)
                self.window.extend(self._r[change : self.n], self._s[change : self.n])

    def _start_segment(self, n: int) -> None:
        """Segment j starts after n = (j - 1) * segment pairs, at level alpha / (j (j + 1)).

        It is tracked for `keep` segments' worth of pairs, ten times longer when it starts on a
        multiple of ten segments, a hundred times when on a multiple of a hundred, and so on:
        a recent change is watched closely, an old slow drift still by a long segment.
        """
        expired = (self._start >= 0) & (self._until <= n)
        self._start[expired] = -1
        self._segments.rejected[expired] = True
        j = n // self.segment + 1
        horizon, step = self.segment * self.keep, self.segment * 10
        while n % step == 0:
            horizon, step = horizon * 10, step * 10
        free = np.flatnonzero(self._start < 0)
        if not len(free):  # more scales than slots: drop the segment nearest its expiry
            free = np.array([int(np.argmin(self._until))])
        slot = int(free[0])
        self._segments.reset(slot, float(np.log(j * (j + 1) / self.alpha)))
        self._start[slot], self._until[slot] = n, n + horizon

    def _required_index(self) -> int | None:
        if self.required is None:
            return None
        return int(np.searchsorted(self.window.grid, self.required))

    def reading(self) -> Reading:
        lower, upper = self.window.bounds()
        return Reading(
            state=self.state,
            pairs=self.n,
            window_pairs=self.window.n,
            kept_accuracy=self.window.point(),
            lower=lower,
            upper=upper,
            alarm_at=self.alarm_at,
            change_at=self.change_at,
        )


def _run_length(flags: np.ndarray) -> int:
    """How many leading entries are True."""
    return len(flags) if flags.all() else int(np.argmin(flags))
