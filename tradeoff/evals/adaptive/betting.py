"""An anytime-valid one-sided test by betting: "the mean of y is above 0", checkable after every
observation without inflating its error.

A bettor starts with wealth 1 and, before each observation, stakes a fraction `lam_t` of it on
y being positive: wealth_t = prod (1 + lam_t * y_t). If the mean of y is 0 or below, wealth is a
nonnegative supermartingale, so by Ville's inequality the chance that it *ever* reaches 1/alpha
is at most alpha: the test may be looked at after every round, for as long as the evaluation
runs, and still errs with probability at most alpha (Waudby-Smith & Ramdas, "Estimating means
of bounded random variables by betting", JRSS-B 2024; Shafer & Vovk's testing by betting). No
normal approximation is involved; y only has to be bounded below (y >= -bound).

The stake is predictable (it uses observations before t only): the approximate Kelly fraction
mean / (variance + mean^2) of what was seen so far (GRAPA), shrunk towards 0 by a pseudo-
observation, capped at half of what keeps wealth nonnegative, and 0 while the mean is negative.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["crossing"]

CAP = 0.5  # share of the largest safe stake (1 / bound) ever put at risk


def crossing(y: np.ndarray, bound: float, alpha: float) -> int | None:
    """How many observations of `y` (in order) it took for the bettor's wealth to reach
    1/alpha — evidence at level alpha that E[y] > 0 — or None if it never did.

    `y` must satisfy y >= -bound (bound > 0); observations are i.i.d. draws, e.g. items in a
    random order. Deterministic: the same sequence gives the same answer.
    """
    n = len(y)
    if n == 0:
        return None
    y = np.asarray(y, dtype=np.float64)
    seen = np.arange(n, dtype=np.float64)  # observations before t
    total = np.concatenate([[0.0], np.cumsum(y)[:-1]])
    squares = np.concatenate([[0.0], np.cumsum(y * y)[:-1]])
    mean = total / (seen + 1)  # one pseudo-observation at 0
    spread = squares - np.where(seen > 0, total * total / np.maximum(seen, 1), 0.0)
    variance = (bound * bound / 4 + spread) / (seen + 1)  # a prior variance of (bound / 2)^2
    stake = np.clip(mean / (variance + mean * mean), 0.0, CAP / bound)
    log_wealth = np.cumsum(np.log1p(stake * y))
    hits = np.flatnonzero(log_wealth >= math.log(1 / alpha))
    return int(hits[0]) + 1 if hits.size else None
