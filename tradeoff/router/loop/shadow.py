"""Shadow calls: a sampled share of policy-routed requests is re-sent to the policy's baseline
after the client has its answer, and the two answers are graded as a pair. For a policy
`tradeoff explore` named candidates for, the job also asks the candidates still in the race
(`ShadowJob.explore`, policies/loop/explore.py), each graded against the baseline's answer; a
candidate whose call fails is not measured on that request.

Off the critical path by construction: a job is queued only once the answer is out (a
non-streaming response's background task, a stream's end), a bounded queue drops what it cannot
hold (counted), a fixed number of worker tasks owned by the event loop make the calls, and any
failure of theirs (an upstream error, a timeout, a grader error) is logged and counted, never
seen by a client. The workers are cancelled cleanly at shutdown.

Sampling happens before routing is known to be free: a sampled request whose routed model *is*
the baseline becomes a free pair (kept, no call), so free and paid pairs are sampled at the same
rate and the monitor's estimate is not tilted towards either.

Budget (`--shadow-budget USD`, per proxy run): a job reserves its estimated cost (the baseline's
and each asked candidate's price for the routed call's tokens, plus the judge's for two verdicts
per graded answer) and is skipped when
spent + reserved + estimate would pass the budget; the actual cost replaces the estimate when
the call returns. Without a budget nothing is skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tradeoff.evals.graders import GradingError
from tradeoff.evals.targets import Target
from tradeoff.evals.upstream import UpstreamError
from tradeoff.policies.loop.grading import FREE, Pair, PairGrader, PairScore
from tradeoff.policies.loop.traffic import Answer
from tradeoff.router.metrics import family
from tradeoff.router.settings import LoopSettings
from tradeoff.router.telemetry import ShadowSpan

log = logging.getLogger("tradeoff.loop")


@dataclass
class ShadowJob:
    """One sampled, answered request, as the shadow call needs it."""

    request_id: str
    policy: str
    routed_model: str
    baseline: str
    body: dict[str, Any]  # the chat-shaped request body the client sent
    prompt: str
    task: str | None
    answer: bytes | list[bytes]  # the client's answer: JSON body, or the SSE events relayed
    routed_cost_usd: float | None
    routed_tokens: tuple[int | None, int | None]
    routed_latency_ms: float | None
    estimate_usd: float = 0.0
    served: Any = None  # the ServedPolicy that routed it
    enqueued: float = field(default_factory=time.monotonic)
    trace: Any = None  # (tracing, the request span's context): its span links there
    explore: tuple[str, ...] = ()  # candidates to ask too (policies/loop/explore.py)


@dataclass
class ShadowResult:
    """What one job produced: the pair's scores and the baseline side's facts."""

    job: ShadowJob
    score: PairScore
    routed_text: str
    baseline_text: str | None
    baseline_cost_usd: float | None
    baseline_tokens: tuple[int | None, int | None]
    baseline_latency_ms: float | None
    spend_usd: float
    explored: tuple[Answer, ...] = ()
    # The baseline answer's score beside the explored ones (grading.PairGrader.reference)
    reference: float | None = None

    @property
    def free(self) -> bool:
        return self.job.routed_model == self.job.baseline


def answer_text(answer: bytes | list[bytes]) -> str | None:
    """The first choice's text of a chat answer (JSON body or SSE events); None if it has none."""
    if isinstance(answer, bytes):
        try:
            content = json.loads(answer)["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None
        return content if isinstance(content, str) else None
    parts: list[str] = []
    for event in answer:
        data = event.strip().removeprefix(b"data:").strip()
        if not data.startswith(b"{"):
            continue
        try:
            choices = json.loads(data).get("choices") or []
        except (ValueError, AttributeError):
            continue
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                piece = (choice.get("delta") or {}).get("content")
                if isinstance(piece, str):
                    parts.append(piece)
    return "".join(parts) if parts else None


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


class Candidates(Protocol):
    """Which of a job's candidates are asked, decided as its baseline answer is in (the loop's
    explorers, router/loop/explore.py: a drop decided while the job waited counts)."""

    def take(self, job: ShadowJob) -> tuple[str, ...]:
        """The candidates of `job` to ask now."""
        ...

    def missed(self, policy: str, model: str) -> None:
        """An asked candidate gave no graded answer (its call or its grading failed)."""
        ...


class ShadowRunner:
    """Samples, budgets and runs shadow jobs; `record(result)` receives each graded pair."""

    def __init__(
        self,
        settings: LoopSettings,
        grader: PairGrader,
        targets: dict[str, Target],
        adapter: Callable[[], Any],
        record: Callable[[ShadowResult], None],
        judge: Target | None = None,
    ) -> None:
        self.settings, self.grader, self.targets = settings, grader, targets
        self._adapter, self._record, self.judge = adapter, record, judge
        self._rng = random.Random(settings.seed)
        self._queue: asyncio.Queue[ShadowJob] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (policy, outcome)
        self.spend_by_policy: dict[str, float] = {}
        self.candidates: Candidates | None = None  # what decides a job's candidates at last

    # -- on the request path: O(1), never raises into it ----------------------------------
    def sample(self, rate: float | None = None) -> bool:
        """A draw at `rate` (default: the shadow rate)."""
        return self._rng.random() < (self.settings.shadow_rate if rate is None else rate)

    def submit(self, job: ShadowJob) -> None:
        """Queue a job (after the client has its answer), unless the budget or queue says no."""
        if self._queue is None:
            return
        if job.routed_model != job.baseline or job.explore:
            job.estimate_usd = self._estimate(job)
            budget = self.settings.shadow_budget_usd
            if (
                budget is not None
                and self.spent_usd + self.reserved_usd + job.estimate_usd > budget
            ):
                self.outcomes[(job.policy, "over_budget")] += 1
                return
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.outcomes[(job.policy, "dropped")] += 1
            return
        self.reserved_usd += job.estimate_usd

    def _estimate(self, job: ShadowJob) -> float:
        prompt, completion = job.routed_tokens
        asked = [*([job.baseline] if job.routed_model != job.baseline else []), *job.explore]
        calls = 0.0
        for model in asked:
            target = self.targets.get(model)
            calls += (target.cost(prompt, completion) if target else None) or 0.0
        judged = 0.0
        if self.judge is not None:
            text_tokens = (len(job.prompt) + 2 * len(json.dumps(job.body))) // 4 + 200
            graded = (job.routed_model != job.baseline) + len(job.explore)
            judged = 2 * graded * (self.judge.cost(text_tokens, 200) or 0.0)
        return calls + judged

    # -- the workers -----------------------------------------------------------------------
    def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.settings.shadow_queue)
        self._workers = [
            asyncio.ensure_future(self._work()) for _ in range(self.settings.shadow_concurrency)
        ]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._queue is not None and not self._queue.empty():
            log.info("shadow: %d queued jobs dropped at shutdown", self._queue.qsize())

    @property
    def pending(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            spend = 0.0
            try:
                result = await self._run(job)
                spend = result.spend_usd
                self._record(result)
                self.outcomes[(job.policy, "free" if result.free else "graded")] += 1
            except asyncio.CancelledError:
                raise
            except ShadowFailed as exc:
                spend = exc.spend_usd
                self.outcomes[(job.policy, exc.kind)] += 1
                log.info("shadow %s: %s", job.request_id, exc)
            except Exception as exc:  # a bug must not kill the worker (or reach a client)
                self.outcomes[(job.policy, "error")] += 1
                log.exception("shadow %s failed: %s", job.request_id, exc)
            finally:
                self.reserved_usd = max(0.0, self.reserved_usd - job.estimate_usd)
                self.spent_usd += spend
                self.spend_by_policy[job.policy] = self.spend_by_policy.get(job.policy, 0.0) + spend

    async def _run(self, job: ShadowJob) -> ShadowResult:
        routed = answer_text(job.answer)
        if routed is None:
            raise ShadowFailed("skipped", "the answer has no text to grade (a tool call?)")
        if job.routed_model == job.baseline:
            free = ShadowResult(job, FREE, routed, routed, None, (None, None), None, 0.0)
            return await self._explore(free) if job.explore else free
        base = await self._ask(job, job.baseline)
        if base.text is None:
            raise ShadowFailed("skipped", "the baseline's answer has no text", base.cost_usd or 0.0)
        pair = Pair(
            job.request_id, job.prompt, routed, base.text, job.task, job.body.get("messages")
        )
        try:
            score = await self.grader.grade(pair)
        except (GradingError, UpstreamError) as exc:
            raise ShadowFailed("grading_error", str(exc), base.cost_usd or 0.0) from None
        result = ShadowResult(
            job,
            score,
            routed,
            base.text,
            base.cost_usd,
            base.tokens,
            base.latency_ms,
            (base.cost_usd or 0.0) + score.cost_usd,
        )
        return await self._explore(result) if job.explore else result

    async def _ask(self, job: ShadowJob, model: str) -> Answer:
        """One shadow call of `model` with the client's request (unscored)."""
        target = self.targets[model]
        body = {k: v for k, v in job.body.items() if k not in ("stream", "stream_options", "n")}
        started = time.perf_counter()
        span = ShadowSpan(job.trace, target, job.policy, job.request_id)
        try:
            reply = await self._adapter().complete(target, body, self.settings.shadow_timeout_s)
        except UpstreamError as exc:
            span.end(exc.message)
            raise ShadowFailed(
                "timeout" if exc.kind == "timeout" else "upstream_error", exc.message
            ) from None
        latency_ms = (time.perf_counter() - started) * 1000
        cost = target.cost(reply.prompt_tokens, reply.completion_tokens)
        span.end(
            None,
            **{
                "gen_ai.usage.input_tokens": reply.prompt_tokens,
                "gen_ai.usage.output_tokens": reply.completion_tokens,
                "tradeoff.cost_usd": cost,
            },
        )
        tokens = (reply.prompt_tokens, reply.completion_tokens)
        return Answer(model, 0.0, cost, latency_ms, tokens, answer_text(reply.content))

    async def _explore(self, result: ShadowResult) -> ShadowResult:
        """Ask the job's candidates and grade each against the baseline's answer."""
        job = result.job
        assert result.baseline_text is not None
        if self.candidates is not None:
            job = replace(job, explore=self.candidates.take(job))
            if not job.explore:
                return result
        found = await asyncio.gather(
            *(self._candidate(job, model, result.baseline_text) for model in job.explore)
        )
        answers = tuple(a for a, _, _ in found if a is not None)
        spend = sum(cost for _, cost, _ in found)
        scores = [s for _, _, s in found if s is not None]
        reference = self.grader.reference(scores) if scores else None
        score = result.score
        if result.free and reference is not None:
            score = PairScore(reference, reference)  # the baseline's answer, graded as one
        return replace(
            result,
            score=score,
            explored=answers,
            reference=reference,
            spend_usd=result.spend_usd + spend,
        )

    async def _candidate(
        self, job: ShadowJob, model: str, baseline: str
    ) -> tuple[Answer | None, float, PairScore | None]:
        """(the graded answer or None when it failed, what it spent, its pair score)."""
        try:
            answer = await self._ask(job, model)
        except ShadowFailed as exc:
            self._missed(job, model, f"explore_{exc.kind}")
            return None, 0.0, None
        spend = answer.cost_usd or 0.0
        if answer.text is None:
            self._missed(job, model, "explore_skipped")
            return None, spend, None
        pair = Pair(
            job.request_id, job.prompt, answer.text, baseline, job.task, job.body.get("messages")
        )
        try:
            score = await self.grader.grade(pair)
        except (GradingError, UpstreamError) as exc:
            log.info("shadow %s: grading %s failed: %s", job.request_id, model, exc)
            self._missed(job, model, "explore_grading_error")
            return None, spend, None
        self.outcomes[(job.policy, "explored")] += 1
        return replace(answer, score=score.routed), spend + score.cost_usd, score

    def _missed(self, job: ShadowJob, model: str, outcome: str) -> None:
        self.outcomes[(job.policy, outcome)] += 1
        if self.candidates is not None:
            self.candidates.missed(job.policy, model)

    # -- /metrics --------------------------------------------------------------------------
    def render(self) -> list[str]:
        outcomes = [
            ((("policy", p), ("outcome", o)), n) for (p, o), n in sorted(self.outcomes.items())
        ]
        spend = [((("policy", p),), v) for p, v in sorted(self.spend_by_policy.items())]
        lines = [
            *family("tradeoff_shadow_requests_total", "counter",
                    "Sampled requests by what became of their shadow call.", outcomes),
            *family("tradeoff_shadow_spend_usd_total", "counter",
                    "Spend on shadow calls and grading, USD.", spend),
        ]  # fmt: skip
        budget = self.settings.shadow_budget_usd
        if budget is not None:
            left = max(0.0, budget - self.spent_usd)
            lines += family("tradeoff_shadow_budget_remaining_usd", "gauge",
                            "Shadow budget left in this run, USD.", [((), left)])  # fmt: skip
        return lines


class ShadowFailed(Exception):
    """A shadow job that produced no pair; `kind` is its metrics outcome."""

    def __init__(self, kind: str, message: str, spend_usd: float = 0.0) -> None:
        super().__init__(message)
        self.kind, self.spend_usd = kind, spend_usd
