"""Testing by betting: banks of e-processes for the mean of bounded pair statistics.

Process k of a bank bets on y_k = a_k * r + b_k * s, a linear statistic of a graded pair (r, s),
against the null "E[y_k | everything before] <= 0 at every step". It is a *mixture of fixed
bets*: the average over fractions f_l of the wealth prod_t (1 + lambda_kl * y_tk), with
lambda_kl = f_l / floor_k, where y_k >= -floor_k always (so every factor stays positive).
Under the null each bet's wealth is a nonnegative supermartingale starting at 1, and so is
their average; by Ville's inequality it ever reaches 1/alpha with probability at most alpha,
however long it is watched (Waudby-Smith & Ramdas 2023, "Estimating means of bounded random
variables by betting", JRSS-B; fixed bets mixed over a grid, their section 5). Several bet
sizes make the process adapt to the variance of y without a learning phase: the small bets
grow under small effects, the large ones under large effects, and the mixture pays only
log(number of bets) for not knowing which.

A process that crossed its threshold stays rejected (the intersection of the sets not yet
rejected is itself anytime-valid), so the sets a bank keeps only shrink.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FRACTIONS", "BetBank"]

# Bet sizes as fractions of the largest safe bet 1/floor. Up to 0.9: a fully adverse pair
# keeps a tenth of that bet's wealth, which the smaller bets of the mixture make up for.
FRACTIONS = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9])


class BetBank:
    """K mixture e-processes over the same stream of pairs; see the module docstring."""

    def __init__(
        self, a: np.ndarray, b: np.ndarray, floor: np.ndarray, log_threshold: np.ndarray
    ) -> None:
        self.a = np.asarray(a, dtype=float)
        self.b = np.asarray(b, dtype=float)
        self.lam = FRACTIONS[None, :] / np.asarray(floor, dtype=float)[:, None]  # (K, L)
        self.log_threshold = np.asarray(log_threshold, dtype=float)  # log(1/alpha_k)
        self.log_wealth = np.zeros(self.lam.shape)
        self.rejected = np.zeros(len(self.a), dtype=bool)
        self.n = 0

    def reset(self, k: int, log_threshold: float) -> None:
        """Start process k afresh (a new segment of a change detector)."""
        self.log_wealth[k] = 0.0
        self.rejected[k] = False
        self.log_threshold[k] = log_threshold

    def log_evidence(self) -> np.ndarray:
        """log of each process's current mixture wealth."""
        return _log_mean_exp(self.log_wealth)

    def extend(self, r: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Feed pairs; return, per process, the index of its first crossing here (-1: none).

        Rejected processes are final, so only the others are updated.
        """
        r = np.asarray(r, dtype=float)
        s = np.asarray(s, dtype=float)
        first = np.full(len(self.a), -1)
        for start in range(0, len(r), 256):  # bounded memory: 256 x K x L floats at a time
            live = np.flatnonzero(~self.rejected)
            if not len(live):
                break
            path = self.log_wealth[live][None] + self._log_growth(
                r[start : start + 256], s[start : start + 256], live
            )  # (T, K, L)
            self.log_wealth[live] = path[-1]
            # The mixture is at most its best bet: look closer only where that one crossed.
            near = (path.max(axis=2) >= self.log_threshold[live][None, :]).any(axis=0)
            for k in np.flatnonzero(near):
                crossed = _log_mean_exp(path[:, k, :]) >= self.log_threshold[live[k]]
                if crossed.any():
                    first[live[k]] = start + int(crossed.argmax())
                    self.rejected[live[k]] = True
        self.n += len(r)
        return first

    def _log_growth(self, r: np.ndarray, s: np.ndarray, live: np.ndarray) -> np.ndarray:
        """Cumulative log wealth factors, (T, K, L). Graders give few distinct pairs (agreement
        two, the judge five): then each distinct pair's factors are computed once and the
        running sums are running counts times those factors."""
        lam = self.lam[live]
        uniq, inv = (
            np.unique(np.stack([r, s], axis=1), axis=0, return_inverse=True)
            if len(r) > 8
            else (r, None)
        )
        if inv is None or len(uniq) > 16:
            y = np.outer(r, self.a[live]) + np.outer(s, self.b[live])
            return np.cumsum(np.log1p(y[:, :, None] * lam[None]), axis=0)
        y = np.outer(uniq[:, 0], self.a[live]) + np.outer(uniq[:, 1], self.b[live])
        table = np.log1p(y[:, :, None] * lam[None])  # (U, K, L)
        counts = np.zeros((len(r), len(uniq)))
        counts[np.arange(len(r)), inv.ravel()] = 1.0
        running = np.cumsum(counts, axis=0)
        growth = running[:, 0, None, None] * table[0]
        for u in range(1, len(uniq)):  # a few multiply-adds beat a (T x U) @ (U x KL) here
            growth += running[:, u, None, None] * table[u]
        return growth


def _log_mean_exp(x: np.ndarray) -> np.ndarray:
    """log(mean(exp(x))) over the last axis, without overflow."""
    top = x.max(axis=-1)
    return top + np.log(np.exp(x - top[..., None]).mean(axis=-1))
