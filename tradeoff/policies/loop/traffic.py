"""Traffic as data: graded pairs and client feedback become rows in the store.

Every graded pair is one `loop_pairs` row (what the monitor replays) and outcomes in the
dataset `traffic-<policy>`: the request is the item (its prompt text only when the proxy runs
with `--log-prompts`, a SHA-256 of it always), the routed model and the baseline are the models,
scored as the pair grader scored them (policies/loop/grading.py) and costed as they were billed.
So `tradeoff fit`, `replay`, `frontier` and the dashboard work on traffic as on imported data.

A pair may carry *explored* answers too: the candidates `tradeoff explore` named, asked the same
request in shadow (policies/loop/explore.py) and graded against the baseline's answer. Each is
one more outcome of the request's item (`run_id` "explore"), so the race, the status and the
refit read candidates as they read the routed model. A pair whose routed model is the baseline
(free: the client's answer is the baseline's) records that answer's cost as the baseline's.

A pair's outcomes never overwrite what is there: feedback on the same answer
(policies/loop/feedback.py) wins over a grader's score, whichever arrives first.

`TrafficWriter.record(pair)` never blocks: a thread writes batches (every `flush_s`, the
proxy's `LoopSettings.write_every_s`, or sooner when 500 are waiting), each in one transaction,
and inserts skip rows already present, so a retried batch never duplicates one. Pairs are on no
client's path and the monitor keeps its state in memory, so seconds are fresh enough, and
fewer, larger batches cost the proxy less CPU.

Every replica's monitor reads the pairs back from the store in one shared order (`seq`, below),
so replicas on one store, and `tradeoff status`, agree on each policy's state.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from tradeoff.evals.store import Store
from tradeoff.evals.store.outcomes import (
    insert_items,
    insert_outcomes,
    item_table,
    outcome_table,
    record_dataset,
    record_models,
)

__all__ = [
    "Answer",
    "GradedPair",
    "TrafficWriter",
    "epoch_pairs",
    "explored_rows",
    "load_pairs",
    "traffic_dataset",
]

log = logging.getLogger("tradeoff.loop")


def traffic_dataset(policy: str) -> str:
    return f"traffic-{policy}"


@dataclass(frozen=True)
class Answer:
    """A candidate's shadow answer to a request, graded against the baseline's."""

    model: str
    score: float
    cost_usd: float | None
    latency_ms: float | None = None
    tokens: tuple[int | None, int | None] = (None, None)
    text: str | None = None  # kept only with --log-prompts


@dataclass(frozen=True)
class GradedPair:
    """One graded shadow pair (the `loop_pairs` columns first, then the outcomes' extras)."""

    request_id: str
    policy: str
    version: int | None
    epoch: int
    policy_id: str | None
    graded_at: datetime
    grader: str
    routed_model: str
    baseline_model: str
    routed_score: float
    baseline_score: float
    is_free: bool
    routed_cost_usd: float | None
    baseline_cost_usd: float | None
    shadow_cost_usd: float | None
    task: str | None
    prompt_sha256: str | None
    prompt: str | None = None  # kept only with --log-prompts
    routed_answer: str | None = None  # likewise
    baseline_answer: str | None = None
    routed_latency_ms: float | None = None
    baseline_latency_ms: float | None = None
    routed_tokens: tuple[int | None, int | None] = (None, None)
    baseline_tokens: tuple[int | None, int | None] = (None, None)
    explored: tuple[Answer, ...] = ()
    # The baseline outcome's score when answers were explored (grading.PairGrader.reference;
    # differs from baseline_score only with the judge); None: baseline_score.
    reference_score: float | None = None


PAIR_COLUMNS = [f.name for f in fields(GradedPair)][:17]
_TYPES = {
    "version": pa.int32(),
    "epoch": pa.int64(),
    "graded_at": pa.timestamp("us"),
    "routed_score": pa.float64(),
    "baseline_score": pa.float64(),
    "is_free": pa.bool_(),
    "routed_cost_usd": pa.float64(),
    "baseline_cost_usd": pa.float64(),
    "shadow_cost_usd": pa.float64(),
}
PAIR_SCHEMA = pa.schema([(c, _TYPES.get(c, pa.string())) for c in PAIR_COLUMNS])
# `seq` orders the pairs for every reader: assigned under the store's "loop-pairs" lock, so a
# batch's numbers follow every number already committed (a reader that has seen seq n never
# finds a pair below n later).
INSERT_PAIRS = (
    f"INSERT INTO loop_pairs ({', '.join(PAIR_COLUMNS)}, seq) SELECT {', '.join(PAIR_COLUMNS)}, "
    "(SELECT coalesce(max(seq), 0) FROM loop_pairs) "
    "+ row_number() OVER (ORDER BY graded_at, request_id) "
    "FROM pair_batch ON CONFLICT (request_id) DO NOTHING"
)
PAIRS_LOCK = "loop-pairs"
_STOP = object()


def ensure_names(con: Any, datasets: set[str], models: set[str]) -> None:
    for name in sorted(datasets):
        record_dataset(
            con,
            name,
            "traffic",
            description="requests the proxy served, graded against the baseline or by feedback",
            keep=True,
        )
    record_models(con, models, "traffic")


def _tables(batch: list[GradedPair]) -> tuple[pa.Table, pa.Table, pa.Table]:
    pairs = pa.Table.from_pylist(
        [dict(zip(PAIR_COLUMNS, astuple(p)[:17], strict=True)) for p in batch],
        schema=PAIR_SCHEMA,
    )
    items, outcomes = [], []
    for p in batch:
        dataset = traffic_dataset(p.policy)
        meta = {"prompt_sha256": p.prompt_sha256, "policy_version": p.version, "source": "shadow"}
        items.append(
            {
                "dataset": dataset,
                "item_id": p.request_id,
                "task": p.task or "",
                "prompt": p.prompt,
                "metadata": json.dumps(meta),
            }
        )
        reference = p.baseline_score if p.reference_score is None else p.reference_score
        sides = [
            (
                p.baseline_model,
                reference,
                p.baseline_answer,
                p.baseline_tokens,
                p.baseline_cost_usd,
                p.baseline_latency_ms,
                "shadow",
            )
        ]
        if p.is_free:  # the client's answer is the baseline's: so are its tokens and cost
            sides = [
                (
                    p.baseline_model,
                    reference,
                    p.routed_answer,
                    p.routed_tokens,
                    p.routed_cost_usd,
                    p.routed_latency_ms,
                    "shadow",
                )
            ]
        else:
            sides.append(
                (
                    p.routed_model,
                    p.routed_score,
                    p.routed_answer,
                    p.routed_tokens,
                    p.routed_cost_usd,
                    p.routed_latency_ms,
                    "shadow",
                )
            )
        for a in p.explored:
            sides.append((a.model, a.score, a.text, a.tokens, a.cost_usd, a.latency_ms, "explore"))
        for model, score, answer, tokens, cost, latency, run in sides:
            outcomes.append(
                {
                    "dataset": dataset,
                    "item_id": p.request_id,
                    "model": model,
                    "response": answer,
                    "score": score,
                    "prompt_tokens": tokens[0],
                    "completion_tokens": tokens[1],
                    "cost_usd": cost,
                    "latency_ms": latency,
                    "params_hash": "",
                    "sample": 0,
                    "run_id": run,
                }
            )
    return pairs, item_table(items), outcome_table(outcomes)


def write_pairs(store: Store, batch: list[GradedPair], known: set[str] | None = None) -> None:
    """Write graded pairs and their traffic outcomes in one transaction.

    `known` holds dataset and model names already ensured (a writer's cache: fewer statements).
    """
    pairs, items, outcomes = _tables(batch)
    datasets = {traffic_dataset(p.policy) for p in batch}
    models = {m for p in batch for m in (p.routed_model, p.baseline_model)}
    models |= {a.model for p in batch for a in p.explored}
    seen = known if known is not None else set()
    with store.lock(PAIRS_LOCK), store.transaction() as con:
        ensure_names(con, datasets - seen, models - seen)
        con.register("pair_batch", pairs)
        con.execute(INSERT_PAIRS)
        con.unregister("pair_batch")
        insert_items(con, items)
        insert_outcomes(con, outcomes, on_conflict="keep")
    seen |= datasets | models


class TrafficWriter:
    """A background writer of graded pairs (the request log's pattern)."""

    def __init__(self, store: Store, *, flush_s: float = 1.0, batch_rows: int = 500) -> None:
        self.store, self.flush_s, self.batch_rows = store, flush_s, batch_rows
        self._known: set[str] = set()  # dataset and model names already in the store
        self.recorded = 0
        self.written = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tradeoff-traffic", daemon=True)
        self._started = False

    def start(self) -> TrafficWriter:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def record(self, pair: GradedPair) -> None:
        self.recorded += 1
        self._queue.put(pair)

    def wait_written(self, timeout_s: float = 10.0) -> bool:
        target, deadline = self.recorded, time.monotonic() + timeout_s
        while self.written < target:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        batch: list[GradedPair] = []
        stopping = False
        while not stopping:
            deadline = time.monotonic() + self.flush_s
            while len(batch) < self.batch_rows:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, GradedPair)
                batch.append(item)
            if batch and self._write(batch, attempts=5 if stopping else 1):
                batch = []
        if batch:
            log.error("traffic: %d graded pairs could not be written to the store", len(batch))

    def _write(self, batch: list[GradedPair], attempts: int) -> bool:
        for i in range(attempts):
            try:
                write_pairs(self.store, batch, self._known)
            except Exception as exc:  # a lock held too long, a full disk: keep them, retry
                log.error("traffic: writing %d pairs failed (%s); will retry", len(batch), exc)
                time.sleep(min(1.0, 0.1 * 2**i))
                continue
            self.written += len(batch)
            return True
        return False


def epoch_pairs(con: Any, policy: str, epoch: int) -> list[tuple[Any, ...]]:
    """A policy epoch's pairs in the order every reader shares: (request_id, routed_score,
    baseline_score, routed_model, graded_at)."""
    return con.execute(
        "SELECT request_id, routed_score, baseline_score, routed_model, graded_at "
        "FROM loop_pairs WHERE policy = ? AND epoch = ? "
        "ORDER BY seq NULLS FIRST, graded_at, request_id",
        [policy, epoch],
    ).fetchall()


def load_pairs(
    store: Store, policy: str, epoch: int, policy_id: str | None = None, after: int | None = None
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """A policy epoch's pairs in the order every reader shares (`seq`; pairs stored before it
    existed first, by grading time), all or those after `seq` number `after`: (routed scores,
    baseline scores, shadow spend, the last seq read)."""
    where = "policy = ? AND epoch = ?" + (" AND policy_id = ?" if policy_id else "")
    params: list[Any] = [policy, epoch] + ([policy_id] if policy_id else [])
    if after is not None:
        where += " AND seq > ?"
        params.append(after)
    with store.connect() as con:
        rows = con.execute(
            "SELECT routed_score, baseline_score, coalesce(shadow_cost_usd, 0), "
            f"coalesce(seq, 0) FROM loop_pairs WHERE {where} "
            "ORDER BY seq NULLS FIRST, graded_at, request_id",
            params,
        ).fetchall()
    last = after or 0
    if not rows:
        return np.zeros(0), np.zeros(0), 0.0, last
    data = np.array(rows, dtype=float)
    return data[:, 0], data[:, 1], float(data[:, 2].sum()), max(last, int(data[:, 3].max()))


def explored_rows(
    con: Any, policy: str, models: list[str], after: int = 0
) -> list[tuple[Any, ...]]:
    """The outcomes of `models` on a policy's graded pairs (every epoch) after pair `seq`
    number `after`, in the pairs' shared order: (seq, request_id, task, model, score, cost)."""
    con.register("explored_models", pa.table({"model": pa.array(models, pa.string())}))
    try:
        return con.execute(
            "SELECT p.seq, p.request_id, coalesce(p.task, ''), o.model, o.score, o.cost_usd "
            "FROM loop_pairs p JOIN outcomes o ON o.dataset = ? AND o.item_id = p.request_id "
            "WHERE p.policy = ? AND p.seq > ? AND o.sample = 0 "
            "AND o.model IN (SELECT model FROM explored_models) ORDER BY p.seq, o.model",
            [traffic_dataset(policy), policy, after],
        ).fetchall()
    finally:
        con.unregister("explored_models")
