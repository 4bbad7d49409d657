"""`fit_policy`: cross-fit on the training items, accept with a valid test, report on held-out.

1. Items are split into train and test (named splits, the dataset's own `test` split by default,
   or a seeded hash). The test items' outcomes are touched only after the policy is chosen;
   their task labels may set the traffic mix the promise is tested on (`policies.fit.mix`).
2. Cross-fitting: per-request costs, per-task scores, the learned router's predictions and the
   cascades' escalation rates for every training item come from fits on the other folds, with
   each family's configuration chosen by an Optuna search nested in the same cross-fit
   (`policies.fit.spaces`, `policies.fit.search`), so the search is part of what acceptance tests.
3. Each family proposes candidates with their out-of-fold decisions (`policies.fit.candidates`);
   `policies.fit.acceptance` accepts those whose constraints hold at a paired one-sided lower bound
   on every traffic mix, with the error budget split so the selection stays valid however many
   were searched.
4. Among the accepted, the best objective (point estimate on the same decisions, under the
   target mix) wins; a simpler family within `SIMPLER_WITHIN` of it wins instead.
5. The policy that will be served is replayed on the test items through its own `plan_many`
   (as `tradeoff replay` does): the metrics and the sentence come from there. Two references
   knowing every held-out outcome are reported beside it: the *accuracy oracle* (per item the
   best-scoring model, cheapest on ties: the most accuracy any routing reaches) and the
   *cheapest oracle* (the cheapest routing whose held-out accuracy meets the requirement's
   accuracy floors: what a perfect router would save). Neither is a policy.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from tradeoff.evals.reviewers import Reviewer
from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact, store_artifact
from tradeoff.policies.data import Outcomes, baseline_index, load_outcomes
from tradeoff.policies.errors import DataError, InfeasibleError
from tradeoff.policies.families.base import Policy
from tradeoff.policies.families.embeddings import installed_encoder
from tradeoff.policies.families.verifiers import Verdicts, usable_verifiers
from tradeoff.policies.fit import per_task
from tradeoff.policies.fit.acceptance import (
    ALPHA,
    Tested,
    accept,
    family_share,
    objective_value,
    testing_order,
)
from tradeoff.policies.fit.candidates import FamilyCandidates, cost_unit
from tradeoff.policies.fit.crossfit import FOLDS, fold_ids
from tradeoff.policies.fit.families import FAMILY_ORDER, FAMILY_SPECS, SPECS
from tradeoff.policies.fit.mix import Strata, TrafficMix, resolve_mixes
from tradeoff.policies.fit.objective import PathJudge
from tradeoff.policies.fit.options import FitOptions
from tradeoff.policies.fit.paths import breakpoints, choose, inside, trace
from tradeoff.policies.fit.search import cross_fitted_search
from tradeoff.policies.fit.spaces import Pieces, Space
from tradeoff.policies.fit.spec import FitContext
from tradeoff.policies.fit.splits import make_splits
from tradeoff.policies.human import with_reviewers
from tradeoff.policies.replay.metrics import Bootstrap, constraint_margin, metric_point, summarize
from tradeoff.policies.replay.report import FitReport
from tradeoff.policies.replay.simulate import (
    Replay,
    Routes,
    oracle_routes,
    replay,
    replay_policy,
    single_routes,
)
from tradeoff.policies.replay.tasks import task_rows
from tradeoff.policies.requirement import Requirement, parse_requirement

SIMPLER_WITHIN = 0.02  # relative objective gap a complex family must beat


def fit_policy(store: Store, options: FitOptions) -> FitReport:
    """Fit a policy meeting `options.requirement` on `options.dataset`; see the module
    docstring and `FitOptions`."""
    o = options
    started = time.perf_counter()
    req = parse_requirement(o.requirement, o.objective)
    reviewer_names = {r.name for r in o.reviewers}
    if not reviewer_names and any(c.metric == "human_review" for c in req.constraints):
        raise DataError(
            "human_review needs a human tier: pass --human-cost USD (a reviewer right on every "
            "review at that price) or add a `tier: human` entry to models.yaml"
        )
    outcomes = load_outcomes(
        store,
        o.dataset,
        with_responses=True,
        capabilities=o.capabilities,
        not_measured=o.not_measured,
    )
    _check_recorded(req, outcomes)
    splits = make_splits(
        outcomes.item_ids,
        outcomes.splits,
        seed=o.seed,
        train_split=o.train_split,
        test_split=o.test_split,
        test_fraction=o.test_fraction,
    )
    train = outcomes.subset(splits.train)
    base_j = baseline_index(train, o.baseline if o.baseline not in reviewer_names else None)
    # Reviewers are columns after the models (so base_j stays): their draft is the baseline.
    outcomes = with_reviewers(outcomes, list(o.reviewers), base_j)
    train = outcomes.subset(splits.train)
    if o.baseline in reviewer_names:  # a current process that reviews everything
        base_j = outcomes.model_index(o.baseline)
    verdicts = Verdicts(train) if train.responses is not None else None
    # The held-out items' task labels (never their outcomes) may set the target traffic mix.
    mixes = resolve_mixes(o.traffic_mix, train.tasks, outcomes.tasks[splits.test])
    fams, skipped, searched = _families(req, train, base_j, verdicts, mixes, o)
    base_train = replay(train, single_routes(train.n, base_j))
    if per_task.applies(req) and o.guarantee:
        fams = _with_task_floor(req, fams, train, base_j, base_train)
    boot = Bootstrap.draw(train.n, o.seed + 1)
    accepted, tested = accept(
        req, fams, train, verdicts, base_train, boot, point_estimate=not o.guarantee, mixes=mixes
    )
    if testing_order(req) == "none":  # nothing to guarantee: every candidate qualifies
        accepted = tested
    elif o.guarantee and _baseline_meets_by_definition(req):
        # "accuracy >= 95% of baseline" holds for the baseline itself, whatever the noise.
        accepted += [t for t in tested if _is_single(t, base_j) and t not in accepted]
    if not accepted:
        raise InfeasibleError(_closest(req, tested, train.n))
    target = mixes[-1].on(train.tasks)
    chosen = _best(req, accepted, cost_unit(train.cost[:, :, 0]), target)
    policy = chosen.candidate.build()
    # Only now are the test items looked at.
    test = outcomes.subset(splits.test)
    report = _report(req, outcomes, policy, chosen, test, base_j, o.seed)
    report.skipped = skipped
    report.notes += [_uncovered_note(m) for m in mixes if m.uncovered]
    report.notes += _review_notes(o.reviewers, report.metrics, report.baseline_metrics)
    if chosen.candidate.routes.verifier is not None:
        report.notes.append(
            "latency of a verified answer: the p95 counts every attempt's whole answer, and a "
            "streamed request sees no token before the cheap answer is read whole and checked, "
            "so its time to first token includes that answer and the verification"
        )
    report.seconds = time.perf_counter() - started
    report.split = splits.test_name
    report.n_fit = len(splits.train)
    report.fit_item_ids = [str(i) for i in outcomes.item_ids[splits.train]]
    report.candidates_tried = len(tested)
    report.acceptance = {
        "items": train.n,
        "method": f"cross-fitted ({FOLDS} folds, configuration searches nested in them) on the "
        f"training items, paired with the baseline; {ALPHA:.0%} error split over "
        f"{sum(1 for f in fams if f.candidates)} families (weighted Bonferroni), fixed-sequence "
        "tests along each cost-weight path, on every traffic mix",
        "level": chosen.level,
        "alpha": ALPHA,
        "lower_bound_margins": chosen.margins,
        "bounds": chosen.bounds,
        "accepted": len(accepted),
        "traffic_mixes": [m.describe() for m in mixes],
        "search": searched,
    }
    report.policy_name = o.name or f"{o.dataset}-{chosen.candidate.family}"
    split_spec = {
        "train_split": splits.train_name,
        "test_split": splits.test_split,
        "test_fraction": splits.test_fraction,
        "seed": o.seed,
    }
    report.artifact = PolicyArtifact.from_policy(
        report.policy_name,
        policy,
        dataset=o.dataset,
        data_hash=outcomes.data_hash,
        requirement=str(req),
        baseline=outcomes.models[base_j],
        metrics=report.held_out()
        | {
            "split_spec": split_spec,
            "acceptance": _accepted_at(report),
            "reviewers": [asdict(r) for r in o.reviewers],
        },
    )
    if o.save:
        store_artifact(store, report.artifact)
    return report


def _accepted_at(report: FitReport) -> dict[str, object]:
    """What the artifact records of its acceptance: the bounds it was accepted at (finite ones:
    the JSON goes to any store), their level and items; the dashboard decides "meets" by them."""
    bounds = report.acceptance.get("bounds") or {}
    return {
        "items": report.acceptance.get("items"),
        "level": report.acceptance.get("level"),
        "alpha": report.acceptance.get("alpha"),
        "bounds": {c: float(b) for c, b in bounds.items() if np.isfinite(b)},
        "keeps_baseline": report.keeps_baseline,
    }


def _review_notes(
    reviewers: tuple[Reviewer, ...], metrics: dict[str, Any], base: dict[str, Any]
) -> list[str]:
    """What review costs next to the baseline, and why the policy uses it or not."""
    if not reviewers:
        return []
    share, base_cost = metrics.get("human_review") or 0.0, base["cost_per_request_usd"]
    price = min(r.cost_usd for r in reviewers)
    ratio = f"{price / base_cost:,.1f}x" if base_cost > 0 else "more than"
    if share > 0:
        return [
            f"{share:.1%} of held-out requests go to review at ${price:g} each: "
            f"${share * price:.3g} of the policy's ${metrics['cost_per_request_usd']:.3g} per "
            "request"
        ]
    return [
        f"no request goes to review: one review (${price:g}) costs {ratio} the baseline's "
        f"${base_cost:.3g} per request, and no tested routing with reviews met the requirement "
        "for less (a cheaper review, or a stricter accuracy floor, can make it pay)"
    ]


def _uncovered_note(mix: TrafficMix) -> str:
    tasks = ", ".join(
        f"{t} ({s:.0%})" if s >= 0.01 else f"{t} (<1%)" for t, s in mix.uncovered.items()
    )
    return (
        f"the {mix.name} task mix has tasks no training item has: {tasks}; the acceptance test "
        "could not cover them"
    )


def _check_recorded(req: Requirement, outcomes: Outcomes) -> None:
    if not np.isnan(outcomes.latency[:, :, 0]).all():
        return
    if any(c.metric == "p95_latency" for c in req.constraints):
        raise DataError(
            f"dataset {outcomes.dataset!r} has no recorded latencies; drop the p95_latency "
            "clause or record outcomes with `tradeoff eval`"
        )
    if req.objective.metric == "p95_latency":
        raise DataError(
            f"dataset {outcomes.dataset!r} has no recorded latencies, so p95_latency cannot be "
            f"the objective ({req.objective}); use --minimize cost or record outcomes with "
            "`tradeoff eval`"
        )


def _families(
    req: Requirement,
    train: Outcomes,
    base_j: int,
    verdicts: Verdicts | None,
    mixes: list[TrafficMix],
    o: FitOptions,
) -> tuple[list[FamilyCandidates], dict[str, str], dict[str, list[dict]]]:
    """The candidates of every family this data supports, why the others are skipped, and
    what each family's configuration search found."""
    names = o.families if o.families is not None else FAMILY_ORDER
    for family in names:
        if family not in SPECS:
            raise DataError(f"unknown family {family!r}; use {', '.join(FAMILY_ORDER)}")
    usable, why_not = usable_verifiers(train)
    folds = fold_ids(train.item_ids, o.seed)
    ctx = FitContext(
        train=train,
        base_j=base_j,
        folds=folds,
        pieces=Pieces(train, folds, o.embedding_model, base_j, _optional_encoder(o)),
        verdicts=verdicts,
        verifiers=usable,
        no_verifier=why_not,
        samples=int(np.max(train.n_samples, initial=1)),
        per_request_cost=o.per_request_cost,
        cheap_first=testing_order(req) == "cheap_first",
    )
    skipped: dict[str, str] = {}
    for family in names:
        reason = SPECS[family].unusable(ctx)
        if reason:
            skipped[family] = reason
    spaces: dict[str, list[Space]] = {}
    for family in [f for f in names if f not in skipped and SPECS[f].searched]:
        spaces[family] = SPECS[family].spaces(ctx)
        if not spaces[family]:
            del spaces[family]
            skipped[family] = SPECS[family].no_space
    active = [f for f in names if f not in skipped]
    levels = {f: ALPHA * family_share(f, active) / len(s) for f, s in spaces.items()}
    unit = cost_unit(train.cost[:, :, 0])
    judge = PathJudge(req, train, base_j, verdicts, mixes, unit, levels, not o.guarantee, o.seed)
    out: list[FamilyCandidates] = []
    searched: dict[str, list[dict]] = {}
    for spec in FAMILY_SPECS:
        if spec.name not in active:
            continue
        found = [
            cross_fitted_search(s, judge, folds, o.n_trials, o.seed)
            for s in spaces.get(spec.name, [])
        ]
        out.append(spec.candidates(ctx, found))
        if spec.searched:
            searched[spec.name] = [f.summary() for f in found]
    return out, skipped, searched


def _with_task_floor(
    req: Requirement,
    fams: list[FamilyCandidates],
    train: Outcomes,
    base_j: int,
    base: Replay,
) -> list[FamilyCandidates]:
    """The task table chosen task by task (`policies.fit.per_task`), one more path of the
    task_table family, at that path's share of the family's error budget."""
    active = [f.family for f in fams if f.candidates]
    out = []
    for fam in fams:
        if fam.family == per_task.FAMILY and fam.ordered:
            level = ALPHA * family_share(fam.family, active) / (len(fam.paths) + 1)
            cand = per_task.task_floor_candidate(req, train, base_j, base, level)
            fam = FamilyCandidates(fam.family, [*fam.paths, [cand]], ordered=True)
        out.append(fam)
    return out


def _optional_encoder(o: FitOptions) -> str | None:
    """The encoder the learned search may add (`FitOptions.try_embedding`)."""
    if o.embedding_model or o.try_embedding is None:
        return None
    return installed_encoder() if o.try_embedding == "auto" else o.try_embedding


def _baseline_meets_by_definition(req: Requirement) -> bool:
    return all(c.baseline_holds for c in req.constraints)


def _is_single(t: Tested, j: int) -> bool:
    chain = t.candidate.routes.chain
    return t.candidate.family == "single" and bool((chain[:, 0] == j).all())


def _best(req: Requirement, accepted: list[Tested], unit: float, mix: Strata | None) -> Tested:
    """The best objective (under the target mix); the simplest family within SIMPLER_WITHIN
    of it wins ties."""
    scored = [(objective_value(req, t.replay, unit, mix), t) for t in accepted]
    top = min(v for v, _ in scored)
    near = [(v, t) for v, t in scored if v <= top + SIMPLER_WITHIN * abs(top) + 1e-12]
    return min(near, key=lambda vt: (SPECS[vt[1].candidate.family].simplicity, round(vt[0], 12)))[1]


def _closest(req: Requirement, tested: list[Tested], n: int) -> str:
    def shortfall(t: Tested) -> float:
        return -min((m for m in t.margins.values() if np.isfinite(m)), default=-np.inf)

    best_per_family: dict[str, Tested] = {}
    for t in sorted(tested, key=shortfall):
        best_per_family.setdefault(t.candidate.family, t)
    nearest = sorted(best_per_family.values(), key=shortfall)[:3]
    points = [
        f"{t.candidate.label}: accuracy {t.replay.score.mean():.3f}, cost "
        f"${t.replay.cost.mean():.3g}/request"
        + "".join(f", {k} short by {-m:.3g}" for k, m in t.margins.items() if m < 0)
        for t in nearest
    ]
    return (
        f'no policy meets "{req}" with 95% confidence on the {n} training items (cross-fitted); '
        "closest: " + "; ".join(points) + ". Loosen the requirement or add outcomes "
        "(see `tradeoff frontier`)"
    )


def _report(
    req: Requirement,
    outcomes: Outcomes,
    policy: Policy,
    chosen: Tested,
    test: Outcomes,
    base_j: int,
    seed: int,
) -> FitReport:
    models = outcomes.models
    boot = Bootstrap.draw(test.n, seed)  # replay's default bootstrap
    verdicts = Verdicts(test) if test.responses is not None else None
    base = replay(test, single_routes(test.n, base_j))
    r = replay_policy(policy, test, verdicts)
    singles_ = {
        name: summarize(replay(test, single_routes(test.n, j)), base, boot, models)
        for j, name in enumerate(models)
    }
    oracle = replay(test, oracle_routes(test))
    cheapest = _cheapest_oracle(req, test, base)
    on_test = {
        str(c): {
            "value": metric_point(c.metric, r),
            "holds": bool(constraint_margin(c, r, base, None) >= 0),
            "lower_bound_margin": constraint_margin(c, r, base, boot),
        }
        for c in req.constraints
    }
    metrics = summarize(r, base, boot, models)
    tasks = task_rows(r, base, test.tasks, seed)
    used = len(metrics["models_used"])
    description = chosen.candidate.label
    if SPECS[chosen.candidate.family].reports_models_used:
        description += f", routing to {used} model{'s' if used != 1 else ''} on the held-out items"
    is_baseline = chosen.candidate.family == "single" and policy.models == (models[base_j],)
    return FitReport(
        requirement=str(req),
        dataset=outcomes.dataset,
        family=chosen.candidate.family,
        description=description,
        baseline=models[base_j],
        metrics=metrics,
        baseline_metrics=singles_[models[base_j]],
        singles=singles_,
        accuracy_oracle=summarize(oracle, base, boot, models),
        cheapest_oracle=None
        if cheapest is None
        else summarize(replay(test, cheapest), base, boot, models),
        test_constraints=on_test,
        skipped={},
        notes=list(outcomes.notes),
        keeps_baseline=is_baseline,
        tasks=tasks,
    )


def _cheapest_oracle(req: Requirement, test: Outcomes, base: Replay) -> Routes | None:
    """The cheapest routing of the held-out items, knowing every outcome, whose accuracy meets
    every accuracy floor of `req` (None without one, or when no routing meets them): the
    gain-per-dollar rule on the true scores and costs traces the least cost at each accuracy
    (a fractional knapsack's hull; `policies.fit.paths`)."""
    floors = [c for c in req.constraints if c.metric == "accuracy" and c.lower_bound]
    if not floors or not test.n:
        return None
    base_acc = float(base.score.mean())
    needed = max(c.value * base_acc if c.relative else c.value for c in floors)
    score = np.nan_to_num(test.score[:, :, 0], nan=0.0)
    cost = test.cost[:, :, 0]
    cost = np.where(np.isnan(cost), np.nanmax(cost, initial=0.0) * 10 + 1.0, cost)
    unit = cost_unit(cost)
    points = breakpoints(score, cost, unit)
    path = trace(points, score, cost)
    ok = np.flatnonzero(path.score >= needed - 1e-12)
    if not len(ok):
        return None
    k = int(ok[np.argmin(path.cost[ok])])
    picks = choose(score, cost, inside(float(path.lam_hi[k]), float(path.lam_lo[k])), unit)
    return single_routes_of(picks)


def single_routes_of(picks: np.ndarray) -> Routes:
    """Routes sending item i to model `picks[i]` alone."""
    return Routes(picks.reshape(-1, 1), np.ones(len(picks), dtype=int))
