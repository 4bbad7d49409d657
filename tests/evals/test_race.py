"""The race's statistics and decisions on synthetic outcomes whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoff.evals.adaptive.betting import crossing
from tradeoff.evals.adaptive.race import Drop, Floor, Race, stratified_order

FLOOR = (Floor(0.95, True, "accuracy >= 95% of baseline"),)


def test_betting_rarely_rejects_a_true_null_however_often_it_is_checked() -> None:
    # Mean exactly 0 (the null's boundary), 2000 sequences of 400, checked after every item.
    rng = np.random.default_rng(0)
    alpha = 0.05
    hits = sum(
        crossing(rng.choice([-1.0, 1.0], size=400), 1.0, alpha) is not None for _ in range(2000)
    )
    assert hits / 2000 <= alpha
    # A naive 95% z-test peeking after every item on the same data errs far more often.
    naive = 0
    for _ in range(2000):
        y = rng.choice([-1.0, 1.0], size=400)
        n = np.arange(1, 401)
        z = np.cumsum(y) / np.sqrt(n)
        naive += bool((z[9:] > 1.645).any())
    assert naive / 2000 > 3 * alpha


def test_betting_finds_a_clear_effect_quickly_and_is_deterministic() -> None:
    y = np.full(200, 0.95)
    first = crossing(y, 1.0, 0.01)
    assert first is not None and first < 20 and crossing(y, 1.0, 0.01) == first
    assert crossing(np.full(200, -0.5), 1.0, 0.01) is None
    assert crossing(np.array([]), 1.0, 0.01) is None


def test_the_order_interleaves_tasks_in_proportion() -> None:
    tasks = ["a"] * 300 + ["b"] * 100
    order = stratified_order(tasks, seed=3)
    assert sorted(order) == list(range(400))
    first = [tasks[i] for i in order[:40]]
    assert 27 <= first.count("a") <= 33  # ~3:1 in every stretch, not all of one task first
    assert list(stratified_order(tasks, seed=3)) == list(order)
    assert list(stratified_order(tasks, seed=4)) != list(order)


def race_over(
    truth: dict[str, dict[str, float]],
    costs: dict[str, float],
    *,
    per_task: int = 300,
    batch: int = 20,
    seed: int = 0,
    **options: object,
) -> Race:
    """Race models with accuracy truth[task][model] (Bernoulli) to the end; returns the race."""
    tasks = [t for t in truth for _ in range(per_task)]
    items = [f"{t}-{i}" for i, t in enumerate(tasks)]
    models = list(costs)
    rng = np.random.default_rng(seed)
    answers = {
        (item, m): float(rng.random() < truth[t][m])
        for item, t in zip(items, tasks, strict=True)
        for m in models
    }
    options.setdefault("floors", FLOOR)
    options.setdefault("dominance", True)
    race = Race(items, tasks, models, baseline=models[0], **options)  # type: ignore[arg-type]
    while not race.finished:
        for item in race.next_round(batch):
            for model in race.active:
                race.record(item, model, 0, answers[(item, model)], costs[model])
        race.close_round()
    return race


def dropped(race: Race) -> dict[str, Drop]:
    return {d.model: d for d in race.drops}


def test_a_useless_candidate_goes_early_a_useful_one_stays() -> None:
    truth = {"a": {"base": 0.9, "cheap": 0.88, "junk": 0.1}}
    race = race_over(truth, {"base": 1.0, "cheap": 0.2, "junk": 0.1})
    assert set(dropped(race)) == {"junk"} and dropped(race)["junk"].after_items <= 40
    assert race.active == ["base", "cheap"] and race.measured == 300


def test_of_two_equal_candidates_only_one_is_dropped() -> None:
    truth = {"a": {"base": 0.9, "twin1": 0.6, "twin2": 0.6, "better": 0.8}}
    race = race_over(truth, {"base": 1.0, "twin1": 0.5, "twin2": 0.5, "better": 0.5})
    # `better` dominates both twins (same cost, more accurate); below the floor too, anyway.
    assert {"twin1", "twin2"} <= set(dropped(race))
    clones = {"a": {"base": 0.9, "twin1": 0.85, "twin2": 0.85}}
    race = race_over(clones, {"base": 1.0, "twin1": 0.5, "twin2": 0.5}, per_task=400)
    assert len(set(dropped(race)) & {"twin1", "twin2"}) <= 1


def test_a_specialist_below_the_floor_elsewhere_is_kept_for_its_task() -> None:
    truth = {"a": {"base": 0.9, "spec": 0.9}, "b": {"base": 0.9, "spec": 0.1}}
    race = race_over(truth, {"base": 1.0, "spec": 0.1}, dominance=False)
    assert "spec" not in dropped(race)  # a per-task table uses it on task a
    truth = {"a": {"base": 0.9, "bad": 0.2}, "b": {"base": 0.9, "bad": 0.1}}
    race = race_over(truth, {"base": 1.0, "bad": 0.1}, dominance=False)
    assert dropped(race)["bad"].reason == (
        "below the floor (accuracy >= 95% of baseline) on every task"
    )


def test_dominance_overall_keeps_a_candidate_that_looks_best_on_some_task() -> None:
    # `other` is worse than `rival` overall at the same cost, but better on task b.
    truth = {
        "a": {"base": 0.95, "rival": 0.9, "other": 0.3},
        "b": {"base": 0.95, "rival": 0.5, "other": 0.9},
    }
    costs = {"base": 5.0, "rival": 1.0, "other": 1.0}
    assert "other" not in dropped(race_over(truth, costs, floors=()))
    # Worse everywhere: dropped, with the reason.
    truth["b"]["other"] = 0.2
    reason = dropped(race_over(truth, costs, floors=()))["other"].reason
    assert reason.startswith("dominated by rival (more accurate with confidence")


def test_dominance_task_by_task_needs_confidence_on_every_task() -> None:
    # `other` trails `rival` by 0.3 on each of 12 tasks: clear overall, unclear on 40 items.
    truth = {f"t{k}": {"base": 0.95, "rival": 0.8, "other": 0.5} for k in range(12)}
    costs = {"base": 5.0, "rival": 1.0, "other": 1.0}
    assert "other" in dropped(race_over(truth, costs, floors=(), per_task=40))
    assert "other" not in dropped(race_over(truth, costs, floors=(), per_task=40, by_task=True))


def test_small_tasks_are_judged_together() -> None:
    truth = {f"t{k}": {"base": 0.9, "junk": 0.0} for k in range(20)}  # 20 tasks of 10 items
    race = race_over(truth, {"base": 1.0, "junk": 0.1}, per_task=10, dominance=False)
    assert "junk" in dropped(race)  # each task alone could never show it


def test_the_same_outcomes_give_the_same_decisions_in_any_recording_order() -> None:
    truth = {
        "a": {"base": 0.9, "mid": 0.7, "junk": 0.2},
        "b": {"base": 0.8, "mid": 0.75, "junk": 0.3},
    }
    costs = {"base": 1.0, "mid": 0.3, "junk": 0.1}
    first, second = race_over(truth, costs), race_over(truth, costs)
    assert first.drops == second.drops and first.measured == second.measured


def test_without_a_baseline_one_candidate_always_remains() -> None:
    race = Race(
        ["i1", "i2"], ["t", "t"], ["x"], baseline=None, floors=(Floor(0.9, False, "f"),),
        dominance=True,
    )  # fmt: skip
    for item in race.next_round(2):
        race.record(item, "x", 0, 0.0, 1.0)
    assert race.close_round() == [] and race.active == ["x"]


@pytest.mark.parametrize("confidence", [0.9, 0.99])
def test_more_confidence_needs_more_items(confidence: float) -> None:
    truth = {"a": {"base": 0.9, "weak": 0.6}}
    race = race_over(truth, {"base": 1.0, "weak": 0.5}, confidence=confidence, batch=5)
    assert "weak" in dropped(race)
    if confidence == 0.99:
        lenient = race_over(truth, {"base": 1.0, "weak": 0.5}, confidence=0.9, batch=5)
        assert dropped(race)["weak"].after_items >= dropped(lenient)["weak"].after_items
