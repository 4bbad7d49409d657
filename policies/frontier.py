"""The cost/accuracy frontier of a dataset on held-out items: singles, policy sweeps, oracle.

Policies (task_table and learned, swept over their cost weight) are fitted on the other items
and measured on the held-out ones, like every figure the product prints. A point is on the
Pareto set when no other attainable point is at least as accurate and at most as costly (and
better in one); the oracle is shown as the upper bound and is never on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from evals.store import Store
from policies.candidates import Candidate, Part, TaskStats, task_table_params
from policies.data import load_outcomes
from policies.learned_fit import MIN_ITEMS, fit_learned
from policies.metrics import Bootstrap, ci
from policies.replay import oracle_routes, replay
from policies.splits import make_splits

SWEEP = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@dataclass(frozen=True)
class FrontierPoint:
    name: str
    kind: str  # "single" | "policy" | "oracle"
    accuracy: float
    accuracy_ci: tuple[float, float]
    cost_per_request_usd: float
    pareto: bool = False


@dataclass(frozen=True)
class Frontier:
    dataset: str
    split: str
    n: int
    points: tuple[FrontierPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "points": [asdict(p) for p in self.points],
        }


def compute_frontier(
    store: Store, dataset: str, split: str | None = None, seed: int = 0, test_fraction: float = 0.3
) -> Frontier:
    """Points measured on `split` (fitted on the rest), or on a seeded hash fraction."""
    outcomes = load_outcomes(store, dataset)
    splits = make_splits(
        outcomes.item_ids,
        outcomes.splits,
        seed=seed,
        test_split=split,
        test_fraction=test_fraction,
    )
    train, test = outcomes.subset(splits.train), outcomes.subset(splits.test)
    costs = train.cost[:, :, 0].mean(axis=0)
    part = Part(test, Bootstrap.draw(test.n, seed))
    cands: list[tuple[str, str, Candidate]] = [
        (name, "single", Candidate("single", {"model": j}, outcomes.models))
        for j, name in enumerate(outcomes.models)
    ]
    if len(outcomes.models) > 1:
        stats = TaskStats.of(train)
        for lam in SWEEP:
            params = task_table_params(stats, costs, lam)
            cands.append(
                (
                    f"task_table lambda={lam:g}",
                    "policy",
                    Candidate("task_table", params, outcomes.models),
                )
            )
        if train.n >= MIN_ITEMS:
            learned = fit_learned(train, costs, seed).policy_template
            part.predicted = learned.predict(
                [str(p) for p in test.prompts], [str(t) for t in test.tasks]
            )
            for lam in SWEEP:
                params = {"rule": "utility", "threshold": 0.5, "lam": lam}
                cands.append(
                    (
                        f"learned lambda={lam:g}",
                        "policy",
                        Candidate("learned", params, outcomes.models, learned),
                    )
                )
    measured = []
    seen: set[str] = set()
    for name, kind, cand in cands:
        r = part.replay(cand)
        # Sweeps often land on the same routing (or on a single model's); show each once.
        signature = r.final.tobytes().hex()
        if signature in seen:
            continue
        seen.add(signature)
        measured.append((name, kind, r))
    oracle = replay(test, oracle_routes(test))
    measured.append(("oracle", "oracle", oracle))
    points = []
    for name, kind, r in measured:
        lo, hi = ci(part.boot.means(r.score))
        points.append(
            FrontierPoint(name, kind, float(r.score.mean()), (lo, hi), float(r.cost.mean()))
        )
    return Frontier(dataset, splits.test_name, test.n, tuple(_mark_pareto(points)))


def _mark_pareto(points: list[FrontierPoint]) -> list[FrontierPoint]:
    real = [p for p in points if p.kind != "oracle"]
    out = []
    for p in points:
        dominated = any(
            q.accuracy >= p.accuracy
            and q.cost_per_request_usd <= p.cost_per_request_usd
            and (q.accuracy > p.accuracy or q.cost_per_request_usd < p.cost_per_request_usd)
            for q in real
        )
        out.append(FrontierPoint(**{**asdict(p), "pareto": p.kind != "oracle" and not dominated}))
    return sorted(out, key=lambda p: (p.cost_per_request_usd, -p.accuracy))
