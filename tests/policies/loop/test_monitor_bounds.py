"""The live monitor's figures stay in their range where the range holds by definition."""

from __future__ import annotations

import numpy as np

from tradeoff.policies.loop.monitor import Monitor


def test_a_share_of_the_reference_never_reads_above_100_percent() -> None:
    monitor = Monitor(0.95)
    rng = np.random.default_rng(0)
    for _ in range(400):  # agreement pairs: the baseline's answer is the reference (s = 1)
        monitor.update(float(rng.random() < 0.97), 1.0)
        reading = monitor.reading()
        assert reading.upper is None or reading.upper <= 1.0
        assert reading.kept_accuracy is None or reading.kept_accuracy <= 1.0
    assert monitor.reading().upper is not None


def test_a_judge_may_find_the_routed_answers_better() -> None:
    monitor = Monitor(0.95)
    for _ in range(400):  # pairwise judge: the routed answer wins most pairs (r > s)
        monitor.update(0.8, 0.2)
    reading = monitor.reading()
    assert reading.kept_accuracy is not None and reading.kept_accuracy > 1.0
    assert reading.lower is not None and reading.lower > 1.0
