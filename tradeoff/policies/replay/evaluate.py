"""`replay_artifact`: a saved policy's metrics on a dataset's recorded outcomes.

By default the items are the artifact's own held-out split when it was fitted on this dataset
(the named test split, or the same seeded hash), so `tradeoff replay` reproduces the numbers
`tradeoff fit` printed; `split="all"` uses every item, any other name that split. Items the
policy was fitted on are never called held-out: the output counts them and says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact
from tradeoff.policies.data import baseline_index, load_outcomes
from tradeoff.policies.errors import DataError
from tradeoff.policies.families.verifiers import Verdicts
from tradeoff.policies.fit.splits import Splits, make_splits
from tradeoff.policies.human import with_fitted_reviewers
from tradeoff.policies.replay.metrics import Bootstrap, summarize
from tradeoff.policies.replay.report import HELD_OUT, json_metrics
from tradeoff.policies.replay.simulate import replay, replay_policy, single_routes
from tradeoff.policies.replay.tasks import task_rows


def _fitted_splits(
    artifact: PolicyArtifact, dataset: str, ids: np.ndarray, labels: np.ndarray
) -> Splits | None:
    """The split the artifact was fitted with, recomputed, when it was fitted on `dataset`."""
    spec = artifact.metrics.get("split_spec") if artifact.dataset == dataset else None
    if not spec:
        return None
    fraction = spec.get("test_fraction")
    return make_splits(
        ids,
        labels,
        seed=int(spec.get("seed", 0)),
        train_split=spec.get("train_split"),
        test_split=spec.get("test_split"),
        test_fraction=None if fraction is None else float(fraction),
    )


def _scope(artifact: PolicyArtifact, dataset: str, n_fitting: int) -> str:
    if n_fitting:
        return f"requests, {n_fitting:,} of them used to fit this policy (not held-out)"
    fitted = artifact.data_hash is not None or artifact.metrics.get("split_spec")
    return HELD_OUT if fitted else "recorded requests"


def _items(
    artifact: PolicyArtifact,
    dataset: str,
    split: str | None,
    ids: np.ndarray,
    labels: np.ndarray,
    fitted: Splits | None,
) -> tuple[np.ndarray, str]:
    if split == "all":
        return np.arange(len(ids)), "all"
    if split is None and fitted is not None:
        return fitted.test, fitted.test_name
    if split is None:
        return np.arange(len(ids)), "all"
    mask = labels == split
    if not mask.any():
        known = ", ".join(sorted({str(s) for s in labels if s})) or "none"
        raise DataError(
            f"no items with split {split!r} in dataset {dataset!r} (splits: {known}); use --split all"
        )
    return np.flatnonzero(mask), split


def replay_artifact(
    store: Store,
    artifact: PolicyArtifact,
    dataset: str | None = None,
    split: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The documented metrics JSON of `artifact` replayed on recorded outcomes."""
    dataset = dataset or artifact.dataset
    if not dataset:
        raise DataError("the policy file names no dataset; pass --dataset NAME")
    policy = artifact.policy()
    outcomes = load_outcomes(store, dataset, with_responses=True)
    outcomes = with_fitted_reviewers(outcomes, artifact)
    fitted = _fitted_splits(artifact, dataset, outcomes.item_ids, outcomes.splits)
    idx, split_name = _items(artifact, dataset, split, outcomes.item_ids, outcomes.splits, fitted)
    if fitted is not None:
        n_fitting = int(np.isin(idx, fitted.train).sum())
    elif artifact.dataset == dataset and artifact.data_hash is not None:
        n_fitting = len(idx)  # fitted here, on items this file does not record: assume all
    else:
        n_fitting = 0
    part = outcomes.subset(idx)
    verdicts = Verdicts(part) if part.responses is not None else None
    r = replay_policy(policy, part, verdicts)
    base_name = artifact.baseline if artifact.baseline in part.models else None
    base_j = baseline_index(part, base_name)
    base = replay(part, single_routes(part.n, base_j))
    if seed is None:  # the fit's own bootstrap seed, so replay reproduces its intervals
        seed = int((artifact.metrics.get("split_spec") or {}).get("seed", 0))
    boot = Bootstrap.draw(part.n, seed)
    scope = _scope(artifact, dataset, n_fitting)
    doc = json_metrics(
        artifact.name,
        artifact.family,
        dataset,
        split_name,
        summarize(r, base, boot, part.models),
        part.models[base_j],
        summarize(base, base, boot, part.models),
        scope=scope,
        tasks=task_rows(r, base, part.tasks, seed),
    )
    return doc | {"held_out": scope == HELD_OUT, "n_fitting_items": n_fitting}
