"""Recorded outcomes of one dataset as dense arrays: items x models x samples.

Everything downstream (replay, metrics, fitting, frontier) works on these arrays with numpy, so
a trial of the search costs a few vectorised operations rather than a Python loop per item.
Errors are outcomes: an errored call scores 0 and still costs what was recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from tradeoff.evals.adaptive import Drop, dropped_models
from tradeoff.evals.capabilities import Capabilities, needs
from tradeoff.evals.store import Store
from tradeoff.evals.store.outcomes import dataset_items, dataset_outcomes
from tradeoff.policies.errors import DataError
from tradeoff.policies.families.base import flatten_messages

MIN_COVERAGE = 0.5  # share of a dataset's items a model needs outcomes for to be included


@dataclass(frozen=True)
class Outcomes:
    """Arrays indexed [item, model, sample]; NaN where a sample was not recorded."""

    dataset: str
    item_ids: np.ndarray  # (n,) str
    tasks: np.ndarray  # (n,) str
    prompts: np.ndarray  # (n,) str
    splits: np.ndarray  # (n,) str ('' when unset)
    models: tuple[str, ...]
    score: np.ndarray  # (n, m, s)
    cost: np.ndarray  # (n, m, s)
    latency: np.ndarray  # (n, m, s) ms, NaN when not recorded
    error: np.ndarray  # (n, m, s) bool
    responses: np.ndarray | None = None  # (n, m, s) object; None when not loaded / none recorded
    data_hash: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    # (n, m) whether the model can serve the item (evals/capabilities.py); None: every one can.
    capable: np.ndarray | None = None
    # (m,) whether the model is a human reviewer (policies/human.py); None: none is.
    human: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.item_ids)

    @property
    def n_samples(self) -> np.ndarray:
        """(n, m) how many samples each item x model has."""
        return np.sum(~np.isnan(self.score), axis=2)

    def model_index(self, name: str) -> int:
        try:
            return self.models.index(name)
        except ValueError:
            raise DataError(
                f"model {name!r} has no outcomes on dataset {self.dataset!r} "
                f"(models: {', '.join(self.models)})"
            ) from None

    def subset(self, idx: np.ndarray) -> Outcomes:
        """The same outcomes restricted to some items (an index array or boolean mask)."""
        return replace(
            self,
            item_ids=self.item_ids[idx],
            tasks=self.tasks[idx],
            prompts=self.prompts[idx],
            splits=self.splits[idx],
            score=self.score[idx],
            cost=self.cost[idx],
            latency=self.latency[idx],
            error=self.error[idx],
            responses=None if self.responses is None else self.responses[idx],
            capable=None if self.capable is None else self.capable[idx],
        )


def baseline_index(train: Outcomes, baseline: str | None) -> int:
    """The named baseline, or the most accurate single model on train (cheaper on ties); a
    human reviewer is the baseline only when named (a current process that reviews)."""
    if baseline is not None:
        return train.model_index(baseline)
    acc = train.score[:, :, 0].mean(axis=0)
    cost = train.cost[:, :, 0].mean(axis=0)
    if train.human is not None:
        acc = np.where(train.human, -np.inf, acc)
    return int(np.lexsort((cost, -np.round(acc, 12)))[0])


CapabilityLookup = Callable[[str], Capabilities | None]


def load_outcomes(
    store: Store,
    dataset: str,
    *,
    with_responses: bool = False,
    capabilities: CapabilityLookup | None = None,
    not_measured: bool = False,
) -> Outcomes:
    """Pivot a dataset's outcomes to arrays; items lacking sample 0 of any model are dropped.

    With `not_measured`, they are kept instead (traffic, where each request measures only the
    models it was routed or shadowed to): a model without an outcome on an item is *not
    measured* there, as adaptive evaluation's items are, never a failure, and no policy may
    route there (`capable` is False: recorded as a free error, the way an item a model cannot
    serve is). Models are then never left out for covering few items.

    With `capabilities` (a model's, by name), an item that needs what a model lacks (tools,
    vision, JSON-schema output: its messages, and its metadata's `tools` and
    `response_format`) counts for that model as the proxy serves it: skipped at no cost, an
    error if nothing else is left (`capable` records which).
    """
    with store.connect(read_only=False) as con:
        items = dataset_items(con, dataset)
        rows = dataset_outcomes(con, dataset, with_responses=with_responses)
    dropped = dropped_models(store, dataset)
    if not items:
        raise DataError(
            f"dataset {dataset!r} has no items in {store}; import it first "
            "(`tradeoff import ...`, or `tradeoff demo` for the bundled data)"
        )
    if not rows:
        raise DataError(
            f"dataset {dataset!r} has no outcomes in {store}; run `tradeoff eval` or import "
            "outcomes first"
        )
    out = _pivot(dataset, items, rows, with_responses, dropped, not_measured)
    return out if capabilities is None else _restrict(out, items, capabilities)


def _json(value: object) -> object:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None


def _restrict(out: Outcomes, items: list[tuple], lookup: CapabilityLookup) -> Outcomes:
    """`out` with each model's outcomes on items it cannot serve made free errors."""
    by_id = {row[0]: row for row in items}
    known = out.capable
    capable = np.ones((out.n, len(out.models)), dtype=bool) if known is None else known.copy()
    caps = {}
    for i, item_id in enumerate(out.item_ids):
        _, _, prompt, messages, _, metadata = by_id[item_id]
        meta = _json(metadata)
        meta = meta if isinstance(meta, dict) else {}
        chat = _json(messages)
        body = {
            "messages": chat if isinstance(chat, list) else [{"role": "user", "content": prompt}],
            "tools": meta.get("tools"),
            "response_format": meta.get("response_format"),
        }
        need = needs(body)
        if not need:
            continue
        for j, model in enumerate(out.models):
            if model not in caps:
                caps[model] = lookup(model) or Capabilities()
            capable[i, j] = not caps[model].missing(need)
    if capable.all() or (known is not None and (capable == known).all()):
        return out
    gone = ~capable[:, :, None] & ~np.isnan(out.score)
    return replace(
        out,
        score=np.where(gone, 0.0, out.score),
        error=out.error | gone,
        cost=np.where(gone, 0.0, out.cost),
        latency=np.where(gone, 0.0, out.latency),
        capable=capable,
        data_hash=_hash(replace(out, score=np.where(gone, 0.0, out.score))),
        notes=(*out.notes, f"{int((~capable).sum())} item x model pairs need a capability the "
                           "model lacks (models.yaml capabilities): skipped, as the proxy does"),
    )  # fmt: skip


def _pivot(
    dataset: str,
    items: list[tuple],
    rows: list[tuple],
    with_responses: bool,
    dropped: dict[str, Drop] | None = None,
    not_measured: bool = False,
) -> Outcomes:
    item_pos = {row[0]: i for i, row in enumerate(items)}
    models = tuple(sorted({row[1] for row in rows}))
    model_pos = {name: j for j, name in enumerate(models)}
    rows = [row for row in rows if row[0] in item_pos and row[2] is not None and row[2] >= 0]
    n_samples = 1 + max((row[2] for row in rows), default=0)
    shape = (len(items), len(models), n_samples)
    score = np.full(shape, np.nan)
    cost = np.full(shape, np.nan)
    latency = np.full(shape, np.nan)
    error = np.zeros(shape, dtype=bool)
    responses = np.full(shape, None, dtype=object) if with_responses else None
    i = np.array([item_pos[r[0]] for r in rows])
    j = np.array([model_pos[r[1]] for r in rows])
    k = np.array([r[2] for r in rows])
    errored = np.array([bool(r[6]) for r in rows])
    raw_score = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=float)
    score[i, j, k] = np.where(errored | np.isnan(raw_score), 0.0, raw_score)
    cost[i, j, k] = [_cost(r) for r in rows]
    latency[i, j, k] = [np.nan if r[5] is None else r[5] for r in rows]
    error[i, j, k] = errored
    if responses is not None:
        responses[i, j, k] = [r[11] for r in rows]
        if all(r[11] is None for r in rows):
            responses = None
    notes = _fill_costs(cost, score, models)

    # A model measured on few items would shrink every other model's data to those items;
    # leave it out (and say so) rather than drop most of the dataset. So is a model adaptive
    # evaluation stopped measuring: the items it was not run on are not measured, not failures,
    # and a policy must not route to it where it was not measured.
    coverage = (~np.isnan(score[:, :, 0])).mean(axis=0)
    stopped = {
        c: dropped[m]
        for c, m in enumerate(models)
        if dropped and m in dropped and coverage[c] < coverage.max()
    }
    for c, drop in stopped.items():
        notes.append(
            f"model {models[c]} was dropped by adaptive evaluation after {drop.after_items} "
            f"items ({drop.reason}) and is left out"
        )
    sparse_models = [
        c
        for c in range(len(models))
        if coverage[c] < MIN_COVERAGE and c not in stopped and not not_measured
    ]
    if len(sparse_models) + len(stopped) == len(models):
        sparse_models = []  # all the others are sparse alike: keep them
    sparse_models += list(stopped)
    if sparse_models and len(sparse_models) < len(models):
        keep_models = [c for c in range(len(models)) if c not in sparse_models]
        for c in (c for c in sparse_models if c not in stopped):
            notes.append(
                f"model {models[c]} has outcomes for only {coverage[c]:.0%} of the items and is "
                "left out; evaluate it on the whole dataset to include it"
            )
        models = tuple(models[c] for c in keep_models)
        score, cost, latency, error = (a[:, keep_models] for a in (score, cost, latency, error))
        if responses is not None:
            responses = responses[:, keep_models]
    capable = None
    if not_measured:
        measured = ~np.isnan(score[:, :, 0])
        capable = measured if not measured.all() else None
        if capable is not None:
            notes.append(
                f"{int((~measured[measured.any(axis=1)]).sum())} item x model pairs were not "
                "measured (no outcome): no policy routes there"
            )
        gone = ~measured
        score[:, :, 0] = np.where(gone, 0.0, score[:, :, 0])
        cost[:, :, 0] = np.where(gone, 0.0, cost[:, :, 0])
        error[:, :, 0] |= gone
        complete = measured.any(axis=1)  # an item nothing measured says nothing
    else:
        complete = ~np.isnan(score[:, :, 0]).any(axis=1)
    if not complete.all() and not not_measured:
        notes.append(
            f"{int((~complete).sum())} items lack an outcome for some model and are left out"
        )
    if not complete.any():
        raise DataError(
            f"no item of dataset {dataset!r} has outcomes for every model "
            f"({', '.join(models)}); evaluate the missing models or import complete outcomes"
        )
    keep = np.flatnonzero(complete)
    prompts = np.array([_prompt(row) for row in items], dtype=object)
    out = Outcomes(
        dataset=dataset,
        item_ids=np.array([row[0] for row in items], dtype=object),
        tasks=np.array([row[1] for row in items], dtype=object),
        prompts=prompts,
        splits=np.array([row[4] for row in items], dtype=object),
        models=models,
        score=score,
        cost=cost,
        latency=latency,
        error=error,
        responses=responses,
        notes=tuple(notes),
        capable=capable,
    ).subset(keep)
    return replace(out, data_hash=_hash(out))


def _cost(row: tuple) -> float:
    if row[4] is not None:
        return float(row[4])
    # No recorded cost: price the tokens with the model's per-token prices when both are known.
    if row[7] is not None and row[9] is not None:
        return float(row[7]) * float(row[9]) + float(row[8] or 0) * float(row[10] or 0)
    return np.nan


def _fill_costs(cost: np.ndarray, score: np.ndarray, models: tuple[str, ...]) -> list[str]:
    """Outcomes without a cost get the model's mean (samples never recorded stay NaN)."""
    notes = []
    for j, name in enumerate(models):
        col = cost[:, j, :]
        missing = np.isnan(col) & ~np.isnan(score[:, j, :])
        if not missing.any():
            continue
        known = col[~np.isnan(col)]
        if known.size == 0:
            notes.append(f"model {name} has no recorded cost or prices; counted as free")
            col[missing] = 0.0
        else:
            notes.append(f"model {name}: {int(missing.sum())} outcomes without cost use its mean")
            col[missing] = float(known.mean())
    return notes


def _prompt(item: tuple) -> str:  # (item_id, task, prompt, messages, ...)
    if item[2]:
        return str(item[2])
    if item[3]:
        try:
            messages = json.loads(item[3]) if isinstance(item[3], str) else item[3]
            return flatten_messages(messages) if isinstance(messages, list) else ""
        except (TypeError, ValueError):
            return ""
    return ""


def _hash(out: Outcomes) -> str:
    """Identifies the exact data a policy was fitted on (items, models, scores, costs)."""
    h = hashlib.sha256()
    h.update(json.dumps([out.dataset, list(out.models), list(out.item_ids)]).encode())
    h.update(np.nan_to_num(out.score[:, :, 0], nan=-1).tobytes())
    h.update(np.nan_to_num(out.cost[:, :, 0], nan=-1).tobytes())
    return h.hexdigest()[:16]
