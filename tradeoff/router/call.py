"""One request's bookkeeping: where it went, what it cost, and its single log row.

Every request, whatever its fate (a 400, a 401, an upstream failure, a client hanging up), ends
in one `Call.finish()`, which records one row and the metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from tradeoff.evals.estimate import count_tokens
from tradeoff.evals.upstream import UpstreamError
from tradeoff.evals.usage import Usage
from tradeoff.router.fallback import Trace, with_fallback
from tradeoff.router.keys.limits import admit_call, settle_call
from tradeoff.router.log.request_log import RequestRow
from tradeoff.router.log.row import QueuedReview
from tradeoff.router.loop.shadow import answer_text
from tradeoff.router.request import ChatRequest, input_tokens
from tradeoff.router.review.drafts import REVIEW_HEADER, REVIEW_ID_HEADER
from tradeoff.router.sessions import Pin, price_rank
from tradeoff.router.state import ProxyState
from tradeoff.router.telemetry import end_request, start_attempt

if TYPE_CHECKING:
    from tradeoff.evals.reviewers import Reviewer
    from tradeoff.router.keys.auth import Caller
    from tradeoff.router.keys.keyfile import KeySpec
    from tradeoff.router.keys.limits import Admission
    from tradeoff.router.loop.shadow import ShadowJob
    from tradeoff.router.reload import ServedPolicy

T = TypeVar("T")
log = logging.getLogger("tradeoff.router")
CLIENT_CLOSED = 499  # nginx's status for "client closed the request"


@dataclass
class Route:
    """Where a request goes: the plan's models, the policy (if any), and the baseline's name."""

    models: tuple[str, ...]
    policy: str | None = None
    baseline: str | None = None
    verifier: str | None = None
    samples: int = 1  # best-of-k: samples of the first model before escalating
    served: ServedPolicy | None = None  # the policy that planned it; None: pass-through
    by_baseline: bool = False  # a violated policy's request sent to its baseline
    version: str | None = None  # the policy's fingerprint (router.routing.policy_version)
    session: str | None = None  # the conversation it belongs to (router.sessions), as logged
    session_key: str | None = None  # its key in the session table; None: not pinned
    first_turn: bool = False  # it starts its conversation (routed afresh, then pinned)
    reason: str | None = None  # why these models (the plan's reason), for the request log
    # Models only a failure reaches (the baseline a policy's plan ends in): never escalated to.
    fallback_only: tuple[str, ...] = ()
    # The human tier the plan chose (router/review): `models` start with its draft.
    review: Reviewer | None = None


@dataclass
class Call:
    """One request's bookkeeping, finished (logged) exactly once."""

    state: ProxyState
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4().hex}")
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    started: float = field(default_factory=time.perf_counter)
    protocol: str = "chat"  # the route it came by, known before its body is parsed
    chat: ChatRequest | None = None
    route: Route | None = None
    trace: Trace = field(default_factory=Trace)
    usage: Usage | None = None  # every answer's tokens (a cascade pays for each)
    cost_usd: float | None = None
    baseline_cost_usd: float | None = None
    ttft_ms: float | None = None
    cost_estimated: bool = False  # some tokens were counted here, not reported by an upstream
    latency_ms: float | None = None
    finished: bool = False
    # The loop (router/loop/live.py): a request sampled for shadowing keeps its answer.
    keep_answer: bool = False
    rounds: int | None = None  # the rounds a refine variant ran (router/refine.py)
    escalated: str | None = None  # the model its failed answer went on to (router/refine.py)
    answer: bytes | None = None
    answer_events: list[bytes] | None = None
    shadow_job: ShadowJob | None = None
    # Who sent it (router/keys/auth.py), and, under per-key limits (router/keys/limits.py), its
    # admission once admitted (settled when the request finishes).
    caller: Caller | None = None
    admission: Admission | None = None
    # Its trace span (router/telemetry.py; None: tracing off) and its upstream attempts' time.
    span: Any = None
    upstream_s: float = 0.0
    # Routed to a reviewer (router/review): the review's id, and the draft answer served.
    review_id: str | None = None
    review_answer: str | None = None
    review_queued: bool = False  # finished answered, so its review is queued with its row

    @property
    def key(self) -> KeySpec | None:
        """The named key of `serve --keys` it came with (its limits), if any."""
        return self.caller.spec if self.caller is not None else None

    @property
    def chat_stream(self) -> bool:
        return bool(self.chat and self.chat.stream)

    def headers(self) -> dict[str, str]:
        out = {"x-tradeoff-request-id": self.request_id}
        if self.route is not None and self.route.policy:
            out["x-tradeoff-policy"] = self.route.policy
        if self.trace.model:
            out["x-tradeoff-model"] = self.trace.model
        session = self.route.session if self.route is not None else None
        if session and session.isascii() and session.isprintable():  # a client's own id may
            out["x-tradeoff-session"] = session  # be anything: echoed only when header-safe
        if self.rounds is not None:
            out["x-tradeoff-rounds"] = str(self.rounds)
        if self.escalated is not None:
            out["x-tradeoff-escalated"] = self.escalated
        if self.review_id is not None and (self.review_queued or not self.finished):
            # An error answer is not reviewed: only an answer (or a stream's start) is marked.
            out[REVIEW_HEADER] = "required"
            out[REVIEW_ID_HEADER] = self.review_id
        if self.cost_usd is not None:
            out["x-tradeoff-cost-usd"] = f"{self.cost_usd:.10f}"
            if self.cost_estimated:
                out["x-tradeoff-cost-estimated"] = "true"
        return out

    async def try_models(
        self,
        models: Sequence[str],
        attempt: Callable[[str, float], Awaitable[T]],
        deadline: float,
        kind: str = "complete",
    ) -> T:
        """`with_fallback` with the proxy's cooldowns and retries, each attempt counted."""
        metrics = self.state.metrics
        await admit_call(self.state, self)  # a key over its limits gets its 429 here

        async def counted(model: str, timeout_s: float) -> T:
            span = start_attempt(self, model)
            try:
                value = await attempt(model, timeout_s)
            except UpstreamError as exc:
                seconds = span.end(exc)
                self.upstream_s += seconds
                metrics.observe_attempt(model, ok=False, seconds=seconds)
                raise
            except BaseException as exc:  # cancelled: the client left, or a shutdown
                self.upstream_s += span.end(exc)
                raise
            seconds = span.end()
            self.upstream_s += seconds
            metrics.observe_attempt(model, ok=True, seconds=seconds)
            return value

        return await with_fallback(
            models,
            counted,
            cooldowns=self.state.cooldowns,
            deadline=deadline,
            retries=self.state.settings.retries,
            trace=self.trace,
            own_timeout=lambda model: self.state.targets[model].timeout_s,
            kind=kind,
        )

    @property
    def prompt_tokens(self) -> int | None:
        return None if self.usage is None else self.usage.prompt

    @property
    def completion_tokens(self) -> int | None:
        return None if self.usage is None else self.usage.completion

    def add_usage(self, model: str, usage: Usage | None, answer: Callable[[], str]) -> None:
        """Count one answer's tokens (a cascade pays for every answer it asked for), each kind
        at its price (`Target.cost_of`: cached input at the cached rate); the served answer is
        counted last.

        Without the upstream's usage, both counts are estimated from the request's messages and
        `answer()` (the text generated, or streamed before a cut) and the row says so.
        """
        if usage is None:
            if self.chat is None:
                return
            tokenizer = self.state.targets[model].upstream_model
            usage = Usage(input_tokens(self.chat, tokenizer), count_tokens(answer(), tokenizer))
            self.cost_estimated = True
        self.usage = usage if self.usage is None else self.usage + usage
        cost = self.state.targets[model].cost_of(usage)
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost
        baseline = self.route.baseline if self.route else None
        if baseline in self.state.targets:
            # What the baseline model alone would have charged for the answer served (the last
            # one counted): once per request, however many answers a cascade paid for.
            assert baseline is not None
            self.baseline_cost_usd = self.state.targets[baseline].cost_of(usage)

    def finish(self, status: int, error: str | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        state = self.state
        latency_s = time.perf_counter() - self.started
        self.latency_ms = latency_s * 1000
        chat, route = self.chat, self.route
        policy = route.policy if route else None
        review = self._queued_review(status)
        self.review_queued = review is not None
        state.metrics.observe_request(
            policy=policy,
            model=self.trace.model,
            status=status,
            stream=bool(chat and chat.stream),
            latency_s=latency_s,
            cost_usd=self.cost_usd,
            protocol=self.protocol,
        )
        state.metrics.observe_fallback(policy, self.trace.fallbacks)
        if status == 200 and self.trace.attempts:
            ttft_s = self.ttft_ms / 1000 if self.ttft_ms is not None else None
            answered_s = ttft_s if (chat and chat.stream) else latency_s
            state.metrics.observe_timing(
                model=self.trace.model,
                protocol=self.protocol,
                ttft_s=ttft_s,
                overhead_s=None if answered_s is None else answered_s - self.upstream_s,
            )
        if status == 200 and route is not None and route.session_key and self.trace.model:
            self._settle_session(route, self.trace.model)
        settle_call(state, self)
        usage = self.usage
        state.request_log.record(
            RequestRow(
                request_id=self.request_id,
                created_at=self.created_at,
                policy=policy,
                requested_model=chat.model if chat else "",
                model=self.trace.model,
                task=chat.task if chat else None,
                stream=bool(chat and chat.stream),
                attempts=self.trace.attempts,
                fallbacks=self.trace.fallbacks,
                status=status,
                error=state.scrubber.text(error) if error else None,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                cost_usd=self.cost_usd,
                baseline_cost_usd=self.baseline_cost_usd,
                latency_ms=latency_s * 1000,
                ttft_ms=self.ttft_ms,
                prompt=chat.prompt if (chat and state.settings.log_prompts) else None,
                cost_estimated=self.cost_estimated,
                protocol=self.protocol,
                session=route.session if route else None,
                cached_tokens=usage.cached if usage else None,
                cache_write_tokens=usage.cache_write if usage else None,
                reasoning_tokens=usage.reasoning if usage else None,
                route_reason=route.reason if route else None,
                key_name=self.caller.name if self.caller is not None else None,
                dropped=self._dropped(),
                rounds=self.rounds,
                escalated=self.escalated,
                review_id=review.review_id if review else None,
                review=review,
            )
        )
        end_request(self, status, error)
        if state.loop is not None:
            try:
                state.loop.on_finish(self, status)
            except Exception:  # the loop must never fail a request
                log.exception("loop: on_finish failed for %s", self.request_id)

    def _queued_review(self, status: int) -> QueuedReview | None:
        """An answered request routed to a reviewer: its review, and its price in the cost (so
        savings count what the review costs)."""
        route, chat = self.route, self.chat
        if status != 200 or self.review_id is None or route is None or route.review is None:
            return None
        if self.answer_events is not None and self.review_answer is None:
            self.review_answer = answer_text(self.answer_events)
        reviewer = route.review
        self.cost_usd = (self.cost_usd or 0.0) + reviewer.cost_usd
        served = route.served
        return QueuedReview(
            review_id=self.review_id,
            reviewer=reviewer.name,
            draft_model=self.trace.model,
            prompt=chat.prompt if chat else None,
            answer=self.review_answer,
            review_cost_usd=reviewer.cost_usd,
            policy_version=served.version if served else None,
            epoch=served.epoch if served else None,
            policy_id=served.artifact.policy_id if served and served.artifact else None,
            baseline=route.baseline,
        )

    def _dropped(self) -> str | None:
        """What the answering model did not see of the client's request (a translation's)."""
        model = self.trace.model
        if self.chat is None or model not in self.state.targets:
            return None
        return self.chat.dropped_for(self.state.targets[model])

    def _settle_session(self, route: Route, model: str) -> None:
        """The session moves to the model that answered if it is dearer (router.sessions)."""
        target = self.state.targets[model]
        sessions = self.state.sessions
        assert sessions is not None and route.session_key and route.version is not None
        pin = Pin(model, price_rank(target), route.version)
        sessions.settle(route.session_key, pin, first_turn=route.first_turn)
