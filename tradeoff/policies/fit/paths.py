"""The gain-per-dollar rule and every routing it can produce as its cost weight varies.

Least cost subject to an accuracy floor is a fractional knapsack over requests; its Lagrangian
rule sends request i to the model maximising

    predicted score[i, j] - lam x predicted cost[i, j] / unit

so a request goes to a dearer model only when the predicted accuracy gain per extra dollar clears
1 / lam. As lam falls from infinity (every request on its cheapest model) to 0 (every request on
its best predicted model), each request climbs the upper hull of its own (cost, score) points,
switching model at a finite set of *breakpoints*. `breakpoints` lists them; between two
consecutive ones the routing does not change, so the whole cost/accuracy path is traced exactly
by applying them in order (`trace`), and a finite grid of lam values (`lam_grid`) covers every
distinct routing when asked for all of them.

Between "every request to the baseline" and lam = 0 the rule has nothing: at lam = 0 every
request already goes to its best predicted model, which at a strict requirement may save too much
to pass. The *anchored* stretch fills it: a `bonus` added to the baseline's (the anchor's)
predicted score keeps a request on the baseline unless another model's predicted score beats the
baseline's by more than the bonus. As the bonus falls from above every request's predicted
advantage to 0, requests leave the baseline one by one, the most clearly better-off first
(`anchor_grid`), ending at the lam = 0 routing: a path that starts at the baseline and moves
toward cheaper routings in small steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIE = 1e-9  # equal utilities go to the cheaper model


def choose(
    pred: np.ndarray,
    cost: np.ndarray,
    lam: float,
    unit: float,
    anchor: int | None = None,
    bonus: float = 0.0,
) -> np.ndarray:
    """Model index per row under the gain-per-dollar rule; `pred`, `cost` are (n, m); `bonus`
    is added to column `anchor`'s predicted score (the anchored stretch)."""
    return np.argmax(utility(pred, cost, lam, unit, anchor, bonus), axis=1)


def utility(
    pred: np.ndarray,
    cost: np.ndarray,
    lam: float,
    unit: float,
    anchor: int | None = None,
    bonus: float = 0.0,
) -> np.ndarray:
    """(n, m) what the rule maximises per row."""
    u = pred - (lam + TIE) * (cost / unit)
    if anchor is not None and bonus:
        u = u.copy()
        u[:, anchor] += bonus
    return u


def anchor_grid(
    pred: np.ndarray, cost: np.ndarray, unit: float, anchor: int, limit: int
) -> np.ndarray:
    """At most `limit` bonus values, descending, for the anchored stretch at lam = 0 (see the
    module docstring): each strictly between two requests' predicted advantages over the
    anchor, so it names one routing. The first routings move few requests (a geometric spread
    of how many have left the anchor), later ones even steps; neither end is included (the
    anchor alone, and the lam = 0 routing, which the lam grid has)."""
    u = utility(pred, cost, 0.0, unit)
    advantage = u.max(axis=1) - u[:, anchor]
    values = np.unique(advantage[advantage > 0])[::-1]  # distinct, descending
    count = len(values)
    if count < 2 or limit < 1:
        return np.zeros(0)
    moved = np.cumsum(np.bincount(np.searchsorted(-values, -advantage[advantage > 0])))
    half = max(limit // 2, 1)
    targets = np.concatenate(
        [np.geomspace(1, moved[-1], half), np.linspace(1, moved[-1], limit - half + 2)[1:-1]]
    )
    # Routing k (k = 0..count-2) moves every request whose advantage is at least values[k].
    ks = np.unique(np.minimum(np.searchsorted(moved, targets), count - 2))
    return (values[ks] + values[ks + 1]) / 2.0


@dataclass(frozen=True)
class Breakpoints:
    """Switches sorted by falling lam: at lam just below `lam[k]`, item `item[k]` moves from
    model `source[k]` to model `target[k]`."""

    start: np.ndarray  # (n,) each item's model when lam is huge (its cheapest)
    lam: np.ndarray  # (K,) descending
    item: np.ndarray
    source: np.ndarray
    target: np.ndarray

    def distinct(self) -> np.ndarray:
        """The distinct breakpoint values, descending: one routing after each."""
        if not len(self.lam):
            return self.lam
        keep = np.concatenate([[True], np.diff(self.lam) < 0])
        return self.lam[keep]


def breakpoints(pred: np.ndarray, cost: np.ndarray, unit: float) -> Breakpoints:
    """Every item's hull walk from its cheapest model to its best predicted one."""
    n, m = pred.shape
    scaled = cost / unit
    rows = np.arange(n)
    # lam = infinity: the cheapest model, the best predicted among equally cheap ones.
    cur = _cheapest(pred, scaled)
    start = cur.copy()
    items, lams, sources, targets = [], [], [], []
    for _ in range(m):
        dp = pred - pred[rows, cur][:, None]
        dc = scaled - scaled[rows, cur][:, None]
        valid = (dp > 0) & (dc > 0)
        if not valid.any():
            break
        slope = np.where(valid, dp / np.where(dc > 0, dc, 1.0), -np.inf)
        best = slope.max(axis=1)
        # Among models tied on the slope, lam just below it prefers the one furthest along.
        tied = valid & (slope >= best[:, None] - 1e-12 * np.abs(best[:, None]))
        nxt = np.argmax(np.where(tied, dc, -np.inf), axis=1)
        has = valid.any(axis=1)
        items.append(rows[has])
        lams.append(best[has])
        sources.append(cur[has])
        targets.append(nxt[has])
        cur = np.where(has, nxt, cur)
    if items:
        item, lam = np.concatenate(items), np.concatenate(lams)
        source, target = np.concatenate(sources), np.concatenate(targets)
    else:
        item = source = target = np.zeros(0, dtype=int)
        lam = np.zeros(0)
    order = np.argsort(-lam, kind="stable")
    return Breakpoints(start, lam[order], item[order], source[order], target[order])


def _cheapest(pred: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    low = scaled.min(axis=1, keepdims=True)
    return np.argmax(np.where(scaled <= low, pred, -np.inf), axis=1)


def inside(lam_hi: float, lam_lo: float) -> float:
    """A cost weight strictly inside (lam_lo, lam_hi): the one routing that holds there."""
    if not np.isfinite(lam_hi):
        return lam_lo * 2.0 + 1.0
    return float(np.sqrt(lam_hi * lam_lo)) if lam_lo > 0 else lam_hi / 2.0


def lam_grid(points: Breakpoints, limit: int) -> np.ndarray:
    """At most `limit` lam values, ascending (most accurate first), each strictly between two
    breakpoints so it names one routing; evenly spread over the distinct routings, both ends
    included. With `limit` >= the number of routings, every one of them."""
    values = points.distinct()
    if not len(values):
        return np.array([0.0])
    # Routing k (k = 0..K) holds for lam in (values[k], values[k-1]), values[-1] = infinity.
    upper = np.concatenate([[np.inf], values])
    lower = np.concatenate([values, [0.0]])
    count = len(upper)
    picks = np.unique(np.round(np.linspace(0, count - 1, min(limit, count))).astype(int))
    mids = np.array([inside(upper[k], lower[k]) for k in picks])
    mids[picks == count - 1] = 0.0  # the last routing: every item on its best predicted model
    return np.sort(mids)


@dataclass(frozen=True)
class Trace:
    """Mean true score and cost after each distinct breakpoint (index 0: every item on its
    cheapest predicted model), and the lam interval each routing holds on."""

    lam_hi: np.ndarray
    lam_lo: np.ndarray
    score: np.ndarray
    cost: np.ndarray


def trace(points: Breakpoints, true_score: np.ndarray, true_cost: np.ndarray) -> Trace:
    """The exact cost/accuracy path of the rule on items with known outcomes (n, m)."""
    n = len(points.start)
    rows = np.arange(n)
    score0 = float(true_score[rows, points.start].sum())
    cost0 = float(true_cost[rows, points.start].sum())
    d_score = true_score[points.item, points.target] - true_score[points.item, points.source]
    d_cost = true_cost[points.item, points.target] - true_cost[points.item, points.source]
    score = score0 + np.concatenate([[0.0], np.cumsum(d_score)])
    cost = cost0 + np.concatenate([[0.0], np.cumsum(d_cost)])
    # Keep the state after the last event of each distinct lam.
    last = (
        np.concatenate([np.diff(points.lam) < 0, [True]]) if len(points.lam) else np.zeros(0, bool)
    )
    keep = np.concatenate([[0], np.flatnonzero(last) + 1])
    hi = np.concatenate([[np.inf], points.lam[last]])
    lo = np.concatenate([points.lam[last], [0.0]])
    return Trace(hi, lo, score[keep] / max(n, 1), cost[keep] / max(n, 1))
