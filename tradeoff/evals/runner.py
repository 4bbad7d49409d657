"""The live eval runner: every (item, model, sample) not yet recorded is called, graded, stored.

Life cycle of `run_eval`:
1. Check everything that can fail before spending: the items exist, every model is in the
   registry with its env keys set and a known price, every grader resolves.
2. Skip outcomes already recorded under (dataset, item_id, model, params_hash, sample); a
   recorded *error* is retried.
3. Call the rest concurrently (global `concurrency`, per-model `max_concurrency`/`rpm`), with
   retries; grade each answer; hand the outcome to the batched writer.
4. Stop launching calls when `--max-cost` would be exceeded; on Ctrl-C, SIGTERM or SIGHUP
   cancel what is in flight, flush what completed and mark the run `interrupted`.

Errors are outcomes: `score` NULL, `error` the (scrubbed) provider or grader message. They count
as wrong answers in accuracy and in the error rate of reliability.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tradeoff.evals.budget import Budget
from tradeoff.evals.call import CallResult, acomplete
from tradeoff.evals.errors import UsageError
from tradeoff.evals.graders import Grader, Item, get_grader
from tradeoff.evals.limits import ModelLimiter, limiter_for
from tradeoff.evals.llm import call_kwargs, count_prompt_tokens, token_prices, warm_up
from tradeoff.evals.outcome_writer import OutcomeWriter
from tradeoff.evals.params import params_hash
from tradeoff.evals.progress import Progress
from tradeoff.evals.refine import escalations, refine, refine_spec, verifier_for
from tradeoff.evals.registry import ModelEntry, Registry
from tradeoff.evals.request_settings import request_settings
from tradeoff.evals.retry import call_with_retries
from tradeoff.evals.reviewers import HUMAN_TIER
from tradeoff.evals.rounds import pass_at_k, pass_at_round
from tradeoff.evals.run_log import close_run, open_run
from tradeoff.evals.stopping import run_async
from tradeoff.evals.store import Store
from tradeoff.evals.summary import summarize
from tradeoff.evals.targets import Target, build_target
from tradeoff.evals.telemetry import CallSpan, Tracing, tracing
from tradeoff.evals.upstream import Adapter
from tradeoff.evals.variants import identity_params


@dataclass
class EvalSpec:
    """What `tradeoff eval` was asked to do."""

    dataset: str
    models: list[str]
    repeats: int = 1
    max_cost_usd: float | None = None
    concurrency: int = 16
    limit: int | None = None
    split: str | None = None
    grader: str | None = None  # overrides the items' own grader
    judge: str | None = None  # registry name of the judge model for the `judge` grader
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, ...
    timeout_s: float = 120.0
    max_retries: int = 3
    progress: bool = True


@dataclass
class EvalReport:
    """What a run did, and the summary over every recorded outcome it covers."""

    run_id: str
    status: str  # completed | budget_exhausted | interrupted | failed
    planned: int
    skipped: int
    recorded: int
    spend_usd: float
    params_hash: str
    message: str = ""
    summary: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Job:
    """One call to make: an item, a model, a sample number."""

    item: Item
    model: str
    sample: int


def load_items(
    store: Store, dataset: str, *, split: str | None = None, limit: int | None = None
) -> list[Item]:
    """The dataset's items in item_id order (the first `limit` of them)."""
    sql = "SELECT dataset, item_id, task, prompt, messages, reference, grader, split, metadata "
    sql += "FROM items WHERE dataset = ?" + (" AND split = ?" if split else "")
    sql += " ORDER BY item_id" + (f" LIMIT {int(limit)}" if limit else "")
    with store.connect(read_only=True) as con:
        rows = con.execute(sql, [dataset, split] if split else [dataset]).fetchall()
        if not rows:
            known = [
                r[0]
                for r in con.execute("SELECT DISTINCT dataset FROM items ORDER BY 1").fetchall()
            ]
    if not rows:
        where = f" (split {split!r})" if split else ""
        raise UsageError(
            f"dataset {dataset!r}{where} has no items in {store} (datasets with items: "
            f"{', '.join(known) or 'none'}); import them with `tradeoff import --format items`"
        )
    return [
        Item(
            dataset=r[0],
            item_id=str(r[1]),
            task=r[2],
            prompt=r[3],
            messages=json.loads(r[4]) if r[4] else None,
            reference=r[5],
            grader=r[6],
            split=r[7],
            metadata=json.loads(r[8]) if r[8] else {},
        )
        for r in rows
    ]


def build_graders(
    items: list[Item], override: str | None, judge: ModelEntry | None
) -> dict[str, Grader]:
    """One grader per distinct spec, built (and checked) before any call."""
    specs = {override} if override else {item.grader for item in items}
    if None in specs or "" in specs:
        missing = next(i.item_id for i in items if not i.grader)
        raise UsageError(f"item {missing!r} names no grader; pass --grader NAME")
    options: dict[str, Any] = {"model": judge} if judge is not None else {}
    return {
        spec: get_grader(spec, **(options if spec == "judge" else {}))
        for spec in sorted(s for s in specs if s)
    }


def recorded_keys(store: Store, dataset: str, hashes: dict[str, str]) -> set[tuple[str, str, int]]:
    """(item_id, model, sample) of the answers already recorded (errors excluded), for each
    model under its params hash."""
    with store.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT item_id, model, sample, params_hash FROM outcomes WHERE dataset = ? "
            "AND model = ANY(?) AND error IS NULL",
            [dataset, list(hashes)],
        ).fetchall()
    return {(str(i), str(m), int(s)) for i, m, s, h in rows if hashes[str(m)] == h}


class Runner:
    """One `tradeoff eval` invocation. Build with `prepare()`, then `await run()`."""

    def __init__(self, store: Store, registry: Registry, spec: EvalSpec) -> None:
        self.store, self.spec = store, spec
        if spec.repeats < 1 or spec.concurrency < 1:
            raise UsageError("--repeats and --concurrency must be at least 1")
        self.entries = {name: registry.get(name) for name in spec.models}
        # Every model a call may go to: the candidates and the models refine variants escalate to.
        self.called = {name: registry.get(name) for name in escalations(self.entries)}
        self.called.update(self.entries)
        for entry in self.called.values():
            if entry.tier == HUMAN_TIER:
                raise UsageError(
                    f"{entry.name!r} is a human review tier and is never called: drop it from "
                    "--models; fit prices it from review_cost_usd and its accuracy"
                )
            call_kwargs(entry)  # a missing env key fails here, naming the variable
        self.prices = {name: token_prices(e) for name, e in self.called.items()}
        self.targets: dict[str, Target] = {n: build_target(e) for n, e in self.called.items()}
        self.items = load_items(store, spec.dataset, split=spec.split, limit=spec.limit)
        judge = registry.get(spec.judge) if spec.judge else None
        self.graders = build_graders(self.items, spec.grader, judge)
        self.phash = params_hash(spec.params)
        # A variant's own settings are part of what its outcomes measured (evals/variants.py).
        self.hashes = {
            name: params_hash({**spec.params, **identity_params(e)})
            for name, e in self.entries.items()
        }
        self.done = recorded_keys(store, spec.dataset, self.hashes)
        self.jobs = [
            Job(item, model, sample)
            for sample in range(spec.repeats)
            for item in self.items
            for model in spec.models
            if (item.item_id, model, sample) not in self.done
        ]
        self.planned = len(self.items) * len(spec.models) * spec.repeats
        self.limiters: dict[str, ModelLimiter] = {}
        self.adapter: Adapter | None = None
        self.tracing: Tracing | None = None
        self.run_id = f"eval-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.budget: Budget | None = None
        self.progress = Progress(0, enabled=False)
        # Sees every outcome as it is recorded (adaptive evaluation keeps its statistics).
        self.on_outcome: Callable[[Job, dict[str, Any]], None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._prompt_tokens: dict[tuple[str, str | None], int] = {}

    def _grader_for(self, item: Item) -> Grader:
        return self.graders[self.spec.grader or item.grader or ""]

    def _judge_spend(self) -> float:
        return sum(float(getattr(g, "spend_usd", 0.0)) for g in self.graders.values())

    def _estimate(self, job: Job) -> float:
        """What the job may cost at most: every round of a refine candidate, and its
        escalation."""
        refine = refine_spec(self.entries[job.model])
        one = self._estimate_call(job, job.model)
        if refine is None:
            return one
        escalation = self._estimate_call(job, refine.escalate) if refine.escalate else 0.0
        return one * (1 + refine.rounds) + escalation

    def _estimate_call(self, job: Job, model: str) -> float:
        assert self.budget is not None
        target = self.targets[model]
        key = (job.item.item_id, target.system_prompt)
        if key not in self._prompt_tokens:
            messages = job.item.chat()
            if target.system_prompt:  # the adapter prepends it
                messages = [{"role": "system", "content": target.system_prompt}, *messages]
            self._prompt_tokens[key] = count_prompt_tokens(self.called[model], messages)
        max_tokens = {**self.spec.params, **target.params}.get("max_tokens")
        return self.budget.estimate(
            model,
            self.prices[model],
            self._prompt_tokens[key],
            int(max_tokens) if max_tokens else None,
        )

    async def run(self, rounds: Iterable[list[Job]] | None = None) -> EvalReport:
        """Call every job, or with `rounds` each batch it yields once the previous one is done
        (adaptive evaluation decides the next batch from the outcomes so far)."""
        # Limiters hold asyncio primitives: create them inside the running loop.
        self.limiters = {name: limiter_for(e) for name, e in self.called.items()}
        if self.spec.max_cost_usd is not None:
            self.budget = Budget(self.spec.max_cost_usd, extra_spend=self._judge_spend)
        await asyncio.to_thread(
            open_run, self.store, self.run_id, self.spec.dataset, self._run_params()
        )
        if self.jobs and not all(t.direct for t in self.targets.values()):
            await warm_up()  # else the first call's latency would include litellm's imports
        writer = OutcomeWriter(self.store, self.run_id)
        writer.start()
        self.adapter = Adapter()  # one connection pool for the run
        self.tracing = tracing()  # a span per call when OTEL_EXPORTER_OTLP_ENDPOINT is set
        self.progress = Progress(
            len(self.jobs), enabled=self.spec.progress, warmup=self.spec.concurrency
        )
        status, message = "failed", ""
        try:
            stopped = None
            for batch in [self.jobs] if rounds is None else rounds:
                stopped = await self._launch(batch, writer)
                if stopped:
                    break
            status, message = ("budget_exhausted", stopped) if stopped else ("completed", "")
        except asyncio.CancelledError:
            status = "interrupted"
            message = "interrupted; rerun the same command to resume (recorded outcomes are kept)"
            raise
        finally:
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            self.progress.finish()
            await self.adapter.aclose()
            await writer.close()
            if self.tracing is not None:
                await asyncio.to_thread(self.tracing.shutdown)
            closing = asyncio.to_thread(
                close_run, self.store, self.run_id, status, self._judge_spend()
            )
            await asyncio.shield(closing)
            if status == "interrupted":
                print(f"{message} (run {self.run_id})", file=sys.stderr)
        report = EvalReport(
            run_id=self.run_id,
            status=status,
            planned=self.planned,
            skipped=self.planned - len(self.jobs),
            recorded=writer.written,
            spend_usd=writer.spend_usd + self._judge_spend(),
            params_hash=self.phash,
            message=message,
        )
        report.summary = await asyncio.to_thread(self.summary)
        return report

    async def _launch(self, jobs: list[Job], writer: OutcomeWriter) -> str | None:
        """Call `jobs` (at most `concurrency` at once) and wait for all of them; the budget's
        stop message if --max-cost stopped the launching."""
        slots = asyncio.Semaphore(self.spec.concurrency)
        stopped = None
        for job in jobs:
            await slots.acquire()
            writer.check()  # a failed writer stops the calls and surfaces its error
            estimate = self._estimate(job) if self.budget else 0.0
            if self.budget and not await self._reserve(estimate):
                slots.release()
                stopped = self.budget.stop_message(job.model, estimate)
                break
            task = asyncio.create_task(self._one(job, estimate, writer, slots))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if self._in_flight:
            await asyncio.gather(*self._in_flight)
        return stopped

    async def _reserve(self, estimate: float) -> bool:
        """Reserve `estimate` against what is left of --max-cost, waiting while calls in flight
        hold the room it needs; False when it does not fit with none in flight."""
        assert self.budget is not None
        while not self.budget.reserve(estimate):
            if not self._in_flight:
                return False
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        return True

    async def _one(
        self, job: Job, estimate: float, writer: OutcomeWriter, slots: asyncio.Semaphore
    ) -> None:
        try:
            entry = self.entries[job.model]
            span = CallSpan(
                self.tracing,
                self.targets[job.model],
                run_id=self.run_id,
                dataset=self.spec.dataset,
                item_id=job.item.item_id,
                task=job.item.task,
                sample=job.sample,
            )
            settings = {**self.spec.params, **request_settings(job.item.metadata)}
            call = self._caller(job.model, settings)
            spec = refine_spec(entry)
            records: list[dict[str, Any]] = []
            extra: dict[str, Any] = {"rounds": None}
            if spec is None:
                result = await call(job.item.chat())
            else:  # a refine candidate: its outcome is the loop's (evals/refine.py)
                verifier = verifier_for(spec, settings)
                escalate = self._caller(spec.escalate, settings) if spec.escalate else None
                refined = await refine(
                    call, job.item.chat(), spec.rounds, verifier, job.item, escalate
                )
                result = refined.result
                extra = {
                    "rounds": refined.count,
                    "escalated": spec.escalate if refined.escalated else None,
                }
                key = self._row(job, result, None, None)
                records = [{**key, **r} for r in refined.records(job.model, spec.escalate)]
            score, error = await self._grade(job.item, result)
            span.end(result, score)
            row = {**self._row(job, result, score, error), **extra}
            writer.add(row, records)
            if self.on_outcome is not None:
                self.on_outcome(job, row)
            self.progress.update(cost_usd=result.cost_usd, error=error is not None)
            if self.budget is not None:
                self.budget.settle(estimate, result.cost_usd, job.model, result.completion_tokens)
        finally:
            slots.release()

    def _caller(
        self, model: str, settings: dict[str, Any]
    ) -> Callable[[list[dict[str, Any]]], Awaitable[CallResult]]:
        """One measured call of `model` (with retries, under its limiter) on given messages."""

        def call(messages: list[dict[str, Any]]) -> Awaitable[CallResult]:
            return call_with_retries(
                lambda: acomplete(
                    self.called[model],
                    messages,
                    settings,
                    timeout_s=self.spec.timeout_s,
                    prices=self.prices[model],
                    adapter=self.adapter,
                    target=self.targets[model],
                ),
                self.limiters[model],
                max_retries=self.spec.max_retries,
            )

        return call

    async def _grade(self, item: Item, result: CallResult) -> tuple[float | None, str | None]:
        if not result.ok:
            return None, result.error
        try:
            score = await self._grader_for(item).agrade(result.text, item)
        except Exception as exc:  # a grader failure is this outcome's error, not the run's
            return None, f"grading failed: {type(exc).__name__}: {exc}"[:2000]
        return score.value, None

    def _row(
        self, job: Job, result: CallResult, score: float | None, error: str | None
    ) -> dict[str, Any]:
        return {
            "dataset": self.spec.dataset,
            "item_id": job.item.item_id,
            "model": job.model,
            "params_hash": self.hashes[job.model],
            "sample": job.sample,
            "response": result.text if result.text or result.ok else None,
            "score": score,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "cost_usd": result.cost_usd,
            "latency_ms": result.latency_ms,
            "ttft_ms": result.ttft_ms,
            "error": error,
            "run_id": self.run_id,
        }

    def _run_params(self) -> dict[str, Any]:
        return {
            "models": self.spec.models,
            "params": self.spec.params,
            "params_hash": self.phash,
            "repeats": self.spec.repeats,
            "limit": self.spec.limit,
            "split": self.spec.split,
            "grader": self.spec.grader,
            "judge": self.spec.judge,
            "max_cost_usd": self.spec.max_cost_usd,
            "concurrency": self.spec.concurrency,
        }

    def summary(self) -> dict[str, list[dict[str, Any]]]:
        """Summary over every recorded outcome of these items, models, params and samples."""
        keys = pd.DataFrame({"item_id": [i.item_id for i in self.items]})
        hashes = pd.DataFrame(
            {"model": list(self.hashes), "params_hash": list(self.hashes.values())}
        )
        with self.store.connect(read_only=True, threads=1) as con:
            con.register("wanted", keys)
            con.register("measured", hashes)
            frame = con.execute(
                "SELECT o.model, i.task, o.item_id, o.sample, o.score, o.error, o.cost_usd, "
                "o.latency_ms, o.rounds, o.escalated FROM outcomes o JOIN items i USING (dataset, item_id) "
                "JOIN wanted w ON w.item_id = o.item_id "
                "JOIN measured m ON m.model = o.model AND m.params_hash = o.params_hash "
                "WHERE o.dataset = ? AND o.sample < ?",
                [self.spec.dataset, self.spec.repeats],
            ).df()
        out = summarize(frame.drop(columns=["rounds", "escalated"]))
        refined = pass_at_round(frame)
        if refined:
            out["refine"] = refined
        sampled = pass_at_k(frame)
        if sampled:
            out["best_of_k"] = sampled
        return out


def run_eval(
    store: Store,
    registry: Registry,
    spec: EvalSpec,
    *,
    on_ready: Callable[[Runner], None] | None = None,
) -> EvalReport:
    """Check, then run, an eval; blocking. `on_ready` sees the prepared runner (for messages)."""
    runner = Runner(store, registry, spec)
    if on_ready is not None:
        on_ready(runner)
    return run_async(runner.run())
