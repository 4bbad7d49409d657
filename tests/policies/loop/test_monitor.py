"""The live monitor's statistics: speed to `ok`, detection after a long good history, the
false-alarm rate under continuous monitoring, and coverage of its interval (seeded runs)."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.policies.loop.monitor import Monitor

R = 0.95


def agree(rng: np.random.Generator, p: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Agreement pairs: r ~ Bernoulli(p) against the baseline's s = 1."""
    return (rng.random(n) < p).astype(float), np.ones(n)


def test_300_agreeing_pairs_are_ok() -> None:
    monitor = Monitor(R)
    states = [monitor.update(1.0, 1.0) for _ in range(300)]
    assert states[-1] == "ok"
    assert monitor.ok_at is not None and monitor.ok_at <= 300
    reading = monitor.reading()
    assert reading.kept_accuracy == 1.0 and reading.lower is not None and reading.lower >= R


def test_always_wrong_after_a_long_good_history_is_violated_within_250_pairs() -> None:
    rng = np.random.default_rng(3)
    monitor = Monitor(R)
    monitor.extend(*agree(rng, 0.99, 20_000))
    assert monitor.state == "ok"
    wrong = 0
    while monitor.state != "violated" and wrong < 250:
        monitor.update(0.0, 1.0)
        wrong += 1
    assert monitor.state == "violated", monitor.reading()
    assert wrong < 60  # in practice a few dozen pairs
    reading = monitor.reading()
    # The figures now cover the pairs since the detected change, not the 20,000 good ones.
    assert reading.window_pairs < 120 and reading.upper is not None and reading.upper < R
    assert reading.change_at is not None and reading.change_at >= 19_900


def test_a_cumulative_bound_would_hide_this_drift() -> None:
    """The reason for the change detector: 20k good pairs then 300 bad ones still average 0.975."""
    rng = np.random.default_rng(4)
    r, _s = agree(rng, 0.99, 20_000)
    r = np.concatenate([r, np.zeros(300)])
    assert r.mean() > R
    monitor = Monitor(R)
    monitor.extend(r, np.ones(len(r)))
    assert monitor.state == "violated"


def test_false_alarms_stay_under_five_percent_at_the_boundary() -> None:
    """K exactly at the requirement (the hardest no-drift case), watched after every pair."""
    rng = np.random.default_rng(5)
    alarms = 0
    runs = 60
    for _ in range(runs):
        monitor = Monitor(R)
        monitor.extend(*agree(rng, R, 3000))
        alarms += monitor.state == "violated"
    assert alarms <= 0.05 * runs + 3  # the bound is 5%; seeded, so this is exact, not flaky


def test_the_interval_covers_the_kept_accuracy_at_every_step() -> None:
    rng = np.random.default_rng(6)
    misses = 0
    runs = 40
    for _ in range(runs):
        monitor = Monitor(None)
        r = (rng.random(1500) < 0.6).astype(float)
        s = (rng.random(1500) < 0.8).astype(float)  # a verifier's scores: K = 0.6 / 0.8
        missed = False
        for i in range(0, 1500, 50):
            monitor.extend(r[i : i + 50], s[i : i + 50])
            reading = monitor.reading()
            assert reading.lower is not None
            upper = np.inf if reading.upper is None else reading.upper
            missed |= not reading.lower <= 0.75 <= upper
        misses += missed
        assert monitor.state == "collecting"  # no requirement: nothing to decide
    assert misses <= 0.075 * runs + 2  # 5% + 2.5% one-sided levels


def test_a_judges_ties_keep_the_baseline_accuracy() -> None:
    monitor = Monitor(R)
    for _ in range(400):
        monitor.update(0.5, 0.5)  # every verdict a tie: r = s = 1/2, K = 1
    assert monitor.state == "ok" and monitor.reading().kept_accuracy == 1.0


@pytest.mark.parametrize("chunk", [1, 7, 50, 600])
def test_batches_give_exactly_what_pair_by_pair_gives(chunk: int) -> None:
    rng = np.random.default_rng(7)
    r, s = agree(rng, 0.9, 1200)
    whole, pieces = Monitor(R), Monitor(R)
    whole.extend(r, s)
    for i in range(0, len(r), chunk):
        pieces.extend(r[i : i + chunk], s[i : i + chunk])
    assert whole.reading() == pieces.reading()
    assert whole.state == pieces.state == "violated"
