"""Replay a policy on recorded outcomes: what it would have called, scored, cost and waited.

A policy's decisions become `Routes` (per item: a chain of model indices, samples per attempt,
an optional verifier). The replay walks the chain position by position for all items at once:
an attempt is accepted when it did not error and the verifier (if any) accepts one of its
samples; otherwise the next model is tried. The last model's answer is kept whatever it is.
Cost and latency count every attempt (samples of one attempt run in parallel: latency is their
max, cost their sum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tradeoff.policies.data import Outcomes
from tradeoff.policies.errors import DataError
from tradeoff.policies.families.base import Plan, Policy, RouteRequest


@dataclass(frozen=True)
class Routes:
    chain: np.ndarray  # (n, L) model indices, -1 after the last
    samples: np.ndarray  # (n,) samples per attempt
    verifier: str | None = None


@dataclass(frozen=True)
class Replay:
    """Per-item results of replaying routes."""

    score: np.ndarray  # (n,)
    cost: np.ndarray  # (n,) every attempt
    latency: np.ndarray  # (n,) ms; NaN when not recorded
    error: np.ndarray  # (n,) the kept answer is an error
    final: np.ndarray  # (n,) model index of the kept answer
    consistency: np.ndarray  # (n,) final model's sample agreement; NaN if every one errored
    # (n,) the plan had no model able to serve the item (the proxy's 400); None: none such
    unservable: np.ndarray | None = None
    # (n,) the kept answer is a human reviewer's (policies/human.py); None: no reviewer exists
    reviewed: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> Replay:
        """The replay of some items only."""
        return Replay(
            self.score[idx],
            self.cost[idx],
            self.latency[idx],
            self.error[idx],
            self.final[idx],
            self.consistency[idx],
            None if self.unservable is None else self.unservable[idx],
            None if self.reviewed is None else self.reviewed[idx],
        )

    @property
    def review(self) -> np.ndarray:
        """(n,) 1.0 where the request went to review: the `human_review` metric per item."""
        if self.reviewed is None:
            return np.zeros(len(self.score))
        return self.reviewed.astype(float)


def single_routes(n: int, model: int) -> Routes:
    return Routes(chain=np.full((n, 1), model), samples=np.ones(n, dtype=int))


def oracle_routes(outcomes: Outcomes) -> Routes:
    """Per item the best-scoring model, cheapest on ties (an upper bound, not a policy)."""
    score, cost = outcomes.score[:, :, 0], outcomes.cost[:, :, 0]
    best = score.max(axis=1, keepdims=True)
    pick = np.argmin(np.where(score >= best - 1e-12, cost, np.inf), axis=1)
    return Routes(pick.reshape(-1, 1), np.ones(outcomes.n, dtype=int))


def routes_from_plans(plans: list[Plan], outcomes: Outcomes) -> Routes:
    """Translate plans to index arrays; a model without outcomes here is a clear error."""
    length = max((len(p.models) for p in plans), default=1)
    chain = np.full((len(plans), length), -1)
    verifiers = {p.verifier for p in plans if p.verifier and len(p.models) * p.samples > 1}
    if len(verifiers) > 1:
        raise DataError(f"replay supports one verifier per policy, got {sorted(verifiers)}")
    index = {name: j for j, name in enumerate(outcomes.models)}
    for i, plan in enumerate(plans):
        for pos, name in enumerate(plan.models):
            if name not in index:
                raise DataError(
                    f"the policy routes to model {name!r}, which has no outcomes on dataset "
                    f"{outcomes.dataset!r} (models: {', '.join(outcomes.models)})"
                )
            chain[i, pos] = index[name]
    samples = np.array([max(1, p.samples) for p in plans], dtype=int)
    return Routes(chain=chain, samples=samples, verifier=next(iter(verifiers), None))


def policy_routes(policy: Policy, outcomes: Outcomes) -> Routes:
    requests = [
        RouteRequest(prompt=str(p), task=str(t))
        for p, t in zip(outcomes.prompts, outcomes.tasks, strict=True)
    ]
    return routes_from_plans(policy.plan_many(requests), outcomes)


VerdictSource = Callable[[str, int], np.ndarray]


def replay(outcomes: Outcomes, routes: Routes, verdicts: VerdictSource | None = None) -> Replay:
    """Vectorised replay; `verdicts(name, k)` gives the verifier's (n, m, s) accept array (a
    verifier judging groups judges the first k samples together)."""
    n, _, n_samp = outcomes.score.shape
    rows = np.arange(n)
    accept_matrix = None
    if routes.verifier is not None:
        if verdicts is None:
            raise DataError(f"verifier {routes.verifier!r} needs recorded responses to replay")
        accept_matrix = verdicts(routes.verifier, int(routes.samples.max(initial=1)))
    if (routes.samples > n_samp).any():
        raise DataError(
            f"the policy asks for {int(routes.samples.max())} samples per call but the data "
            f"records at most {n_samp}; record repeats with `tradeoff eval --samples K`"
        )
    sample_mask = np.arange(n_samp)[None, :] < routes.samples[:, None]
    first_only = np.broadcast_to(np.arange(n_samp)[None, :] < 1, sample_mask.shape)
    done = np.zeros(n, dtype=bool)
    score, cost, latency = np.zeros(n), np.zeros(n), np.zeros(n)
    error = np.zeros(n, dtype=bool)
    final = np.zeros(n, dtype=int)
    length = routes.chain.shape[1]
    for pos in range(length):
        model = routes.chain[:, pos]
        active = ~done & (model >= 0)
        if not active.any():
            break
        m = np.where(active, model, 0)
        sc, err = outcomes.score[rows, m], outcomes.error[rows, m]
        # Only the first model of a plan is sampled k times; escalations make one call.
        used = (sample_mask if pos == 0 else first_only) & ~np.isnan(sc)
        cost += np.where(active, np.where(used, outcomes.cost[rows, m], 0.0).sum(axis=1), 0.0)
        lat = np.where(used, outcomes.latency[rows, m], -np.inf).max(axis=1)
        latency += np.where(active, np.where(np.isinf(lat), np.nan, lat), 0.0)
        ok = used & ~err
        if accept_matrix is not None:
            ok &= accept_matrix[rows, m]
        passed = ok.any(axis=1)
        last = np.ones(n, dtype=bool) if pos == length - 1 else routes.chain[:, pos + 1] < 0
        take = active & (passed | last)
        pick = np.where(passed, ok.argmax(axis=1), 0)
        score = np.where(take, np.nan_to_num(sc[rows, pick]), score)
        error = np.where(take, err[rows, pick], error)
        final = np.where(take, m, final)
        done |= take
    unservable = None if outcomes.capable is None else ~outcomes.capable[rows, final]
    reviewed = None if outcomes.human is None else outcomes.human[final]
    return Replay(
        score, cost, latency, error, final, _consistency(outcomes, final), unservable, reviewed
    )


def _consistency(outcomes: Outcomes, final: np.ndarray) -> np.ndarray:
    """Per item, the share of the final model's non-error samples equal to their most frequent
    score (evals/reliability.py's agreement); 1 with one sample, NaN if every sample errored."""
    rows = np.arange(outcomes.n)
    sc = np.round(outcomes.score[rows, final], 6)
    valid = ~np.isnan(sc) & ~outcomes.error[rows, final]
    same = (sc[:, :, None] == sc[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    count = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = same.sum(axis=2).max(axis=1) / count
    return np.where(count >= 1, share, np.nan)


def replay_policy(
    policy: Policy, outcomes: Outcomes, verdicts: VerdictSource | None = None
) -> Replay:
    return replay(outcomes, policy_routes(policy, outcomes), verdicts)
