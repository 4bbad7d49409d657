"""`fit_policy`: search on the fitting items, accept on validation with confidence, report on test.

1. Items are split into train and test (named splits or a seeded hash); validation is carved
   from train. The test items are loaded into their own arrays and touched only after the
   policy is chosen.
2. Optuna searches families and parameters on the fitting items (train minus validation).
3. Every candidate it tried is replayed on validation; a candidate is *accepted* when each
   constraint's one-sided 95% paired-bootstrap lower bound holds. The best accepted one wins
   (simpler families win ties).
4. The winner is replayed on the test items: the metrics and the sentence come from there.
"""

from __future__ import annotations

import time

import numpy as np

from evals.store import Store
from policies.artifact import PolicyArtifact, store_artifact
from policies.candidates import SIMPLICITY, Candidate, Part
from policies.data import CapabilityLookup, Outcomes, baseline_index, load_outcomes
from policies.errors import DataError, InfeasibleError
from policies.learned_fit import MIN_ITEMS, fit_learned
from policies.metrics import Bootstrap, constraint_margin, metric_point, summarize
from policies.replay import Replay, oracle_routes, replay
from policies.report import FitReport
from policies.requirement import Requirement, parse_requirement
from policies.search import SearchSpace, objective_value, search
from policies.splits import make_splits
from policies.verifiers import Verdicts, usable_verifiers

SIMPLER_WITHIN = 0.02  # relative objective gap a complex family must beat
FAMILY_ORDER = ("single", "task_table", "learned", "cascade", "best_of_k")


def fit_policy(
    store: Store,
    dataset: str,
    requirement: str,
    baseline: str | None = None,
    objective: str = "minimize cost",
    seed: int = 0,
    train_split: str | None = None,
    test_split: str | None = None,
    test_fraction: float = 0.3,
    n_trials: int = 120,
    families: tuple[str, ...] = FAMILY_ORDER,
    name: str | None = None,
    save: bool = True,
    capabilities: CapabilityLookup | None = None,
) -> FitReport:
    """Fit a policy meeting `requirement` on `dataset`; see the module docstring. With
    `capabilities`, no accepted policy leaves an item to a model that cannot serve it."""
    started = time.perf_counter()
    req = parse_requirement(requirement, objective)
    outcomes = load_outcomes(store, dataset, with_responses=True, capabilities=capabilities)
    splits = make_splits(
        outcomes.item_ids,
        outcomes.splits,
        seed=seed,
        train_split=train_split,
        test_split=test_split,
        test_fraction=test_fraction,
    )
    _check_recorded(req, outcomes)
    train = outcomes.subset(splits.train)
    base_j = baseline_index(train, baseline)
    fit_out = outcomes.subset(splits.fit)
    costs = fit_out.cost[:, :, 0].mean(axis=0)
    space, skipped, oof = _space(fit_out, costs, families, seed)
    fit = _part(fit_out, seed + 1, space, predicted=oof)
    val = _part(outcomes.subset(splits.validation), seed + 2, space)
    base_fit, base_val = (p.replay(_single(base_j, p)) for p in (fit, val))
    candidates = search(req, space, fit, base_fit, n_trials, seed)
    chosen, checks = _accept(req, candidates, val, base_val)
    # Only now are the test items looked at.
    test = _part(outcomes.subset(splits.test), seed, space)  # replay's default bootstrap
    report = _report(req, outcomes, chosen, checks, test, base_j, space, skipped)
    report.seconds = time.perf_counter() - started
    report.split = splits.test_name
    report.n_fit, report.n_validation = len(splits.fit), len(splits.validation)
    report.fit_item_ids = [str(i) for i in outcomes.item_ids[splits.train]]
    report.candidates_tried = len(candidates)
    report.policy_name = name or f"{dataset}-{chosen.family}"
    split_spec = {
        "train_split": train_split,
        "test_split": test_split,
        "test_fraction": None if test_split else test_fraction,
        "seed": seed,
    }
    report.artifact = PolicyArtifact.from_policy(
        report.policy_name,
        chosen.policy(),
        dataset=dataset,
        data_hash=outcomes.data_hash,
        requirement=str(req),
        baseline=outcomes.models[base_j],
        metrics=report.held_out() | {"split_spec": split_spec},
    )
    if save:
        store_artifact(store, report.artifact)
    return report


def _check_recorded(req: Requirement, outcomes: Outcomes) -> None:
    wants_latency = req.objective.metric == "p95_latency" or any(
        c.metric == "p95_latency" for c in req.constraints
    )
    if wants_latency and np.isnan(outcomes.latency[:, :, 0]).all():
        raise DataError(
            f"dataset {outcomes.dataset!r} has no recorded latencies; drop the p95_latency "
            "clause or record outcomes with `tradeoff eval`"
        )


def _space(
    fit: Outcomes, costs: np.ndarray, families: tuple[str, ...], seed: int
) -> tuple[SearchSpace, dict[str, str], np.ndarray | None]:
    """The families this data supports (and why the others are skipped)."""
    skipped: dict[str, str] = {}
    usable, why_not = usable_verifiers(fit)
    samples = int(np.max(fit.n_samples, initial=1))
    allowed = []
    for family in families:
        reason = None
        if family not in FAMILY_ORDER:
            raise DataError(f"unknown family {family!r}; use {', '.join(FAMILY_ORDER)}")
        if family != "single" and len(fit.models) < 2:
            reason = "needs at least two models"
        elif family == "task_table" and len(set(fit.tasks)) < 2:
            reason = "the dataset has a single task"
        elif family == "learned" and fit.n < MIN_ITEMS:
            reason = f"needs at least {MIN_ITEMS} fitting items (has {fit.n})"
        elif family in ("cascade", "best_of_k") and not usable:
            reason = "; ".join(why_not) or "no reference-free verifier can be replayed"
        elif family == "best_of_k" and samples < 2:
            reason = "no repeated samples recorded (best_of_k needs k >= 2 samples per item)"
        if reason:
            skipped[family] = reason
        else:
            allowed.append(family)
    learned, oof = None, None
    if "learned" in allowed:
        result = fit_learned(fit, costs, seed)
        learned, oof = result.policy_template, result.oof
    space = SearchSpace(
        models=fit.models,
        costs=costs,
        families=tuple(allowed),
        verifiers=tuple(usable),
        max_samples=samples,
        learned=learned,
    )
    return space, skipped, oof


def _part(
    outcomes: Outcomes, seed: int, space: SearchSpace, predicted: np.ndarray | None = None
) -> Part:
    verdicts = Verdicts(outcomes) if outcomes.responses is not None else None
    if predicted is None and space.learned is not None:
        predicted = space.learned.predict(
            [str(p) for p in outcomes.prompts], [str(t) for t in outcomes.tasks]
        )
    return Part(outcomes, Bootstrap.draw(outcomes.n, seed), verdicts, predicted)


def _single(j: int, part: Part) -> Candidate:
    return Candidate("single", {"model": j}, part.outcomes.models)


def _accept(
    req: Requirement, candidates: list[Candidate], val: Part, base: Replay
) -> tuple[Candidate, dict[str, float]]:
    """The best candidate whose constraints hold on validation with 95% confidence."""
    scored = []
    for cand in candidates:
        r = val.replay(cand)
        margins = {str(c): constraint_margin(c, r, base, val.boot) for c in req.constraints}
        ok = all(np.isfinite(m) and m >= 0 for m in margins.values())
        ok = ok and (r.unservable is None or not r.unservable.any())  # never plan the incapable
        scored.append((ok, objective_value(req, r, val), cand, margins))
    feasible = [s for s in scored if s[0]]
    if not feasible:
        raise InfeasibleError(_closest(req, scored, val))
    # A more complex family must beat a simpler one by more than noise-level margins to win:
    # the simplest family within SIMPLER_WITHIN of the best objective is chosen.
    top = min(s[1] for s in feasible)
    near = [s for s in feasible if s[1] <= top + SIMPLER_WITHIN * abs(top) + 1e-12]
    best = min(near, key=lambda s: (SIMPLICITY[s[2].family], round(s[1], 12), s[2].key))
    return best[2], best[3]


def _closest(req: Requirement, scored: list, val: Part) -> str:
    def shortfall(s: tuple) -> float:
        return -min((m for m in s[3].values() if np.isfinite(m)), default=-np.inf)

    best_per_family: dict[str, tuple] = {}
    for s in sorted(scored, key=lambda s: (shortfall(s), s[1])):
        best_per_family.setdefault(s[2].family, s)
    nearest = sorted(best_per_family.values(), key=lambda s: (shortfall(s), s[1]))[:3]
    points = []
    for _, _, cand, margins in nearest:
        r = val.replay(cand)
        points.append(
            f"{cand.describe()}: accuracy {r.score.mean():.3f}, cost ${r.cost.mean():.3g}/request"
            + "".join(f", {k} short by {-m:.3g}" for k, m in margins.items() if m < 0)
        )
    return (
        f'no policy meets "{req}" with 95% confidence on the validation items; closest: '
        + "; ".join(points)
        + ". Loosen the requirement or add outcomes (see `tradeoff frontier`)"
    )


def _report(
    req: Requirement,
    outcomes: Outcomes,
    chosen: Candidate,
    checks: dict[str, float],
    test: Part,
    base_j: int,
    space: SearchSpace,
    skipped: dict[str, str],
) -> FitReport:
    models = outcomes.models
    base = test.replay(_single(base_j, test))
    r = test.replay(chosen)
    singles = {
        name: summarize(test.replay(_single(j, test)), base, test.boot, models)
        for j, name in enumerate(models)
    }
    oracle = replay(test.outcomes, oracle_routes(test.outcomes))
    on_test = {
        str(c): {
            "value": metric_point(c.metric, r),
            "holds": bool(constraint_margin(c, r, base, None) >= 0),
            "lower_bound_margin": constraint_margin(c, r, base, test.boot),
        }
        for c in req.constraints
    }
    return FitReport(
        requirement=str(req),
        dataset=outcomes.dataset,
        family=chosen.family,
        description=chosen.describe(),
        baseline=models[base_j],
        metrics=summarize(r, base, test.boot, models),
        baseline_metrics=singles[models[base_j]],
        singles=singles,
        oracle=summarize(oracle, base, test.boot, models),
        validation_margins=checks,
        test_constraints=on_test,
        skipped=skipped,
        notes=list(outcomes.notes),
    )
