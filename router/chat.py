"""POST /v1/chat/completions: route, call with fallbacks, answer, log exactly once.

`model` names a policy (its plan decides the models) or a configured model (passed through).
Every request, whatever its fate (a 400, a 401, an upstream failure, a client hanging up), ends
in one `Call.finish()`, which records one row and the metrics.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from policies.base import RouteRequest
from router.errors import ProxyError
from router.fallback import AllFailed, Trace, with_fallback
from router.request_log import RequestRow
from router.sse import Send, SSEResponse, wait_for_disconnect
from router.state import ProxyState
from router.upstream import Reply, Stream, UpstreamError
from router.validation import ChatRequest, parse_chat_request, unknown_model

CLIENT_CLOSED = 499  # nginx's status for "client closed the request"


@dataclass
class Route:
    """Where a request goes: the plan's models, the policy (if any), and the baseline's name."""

    models: tuple[str, ...]
    policy: str | None = None
    baseline: str | None = None
    verifier: str | None = None


@dataclass
class Call:
    """One request's bookkeeping, finished (logged) exactly once."""

    state: ProxyState
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4().hex}")
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    started: float = field(default_factory=time.perf_counter)
    chat: ChatRequest | None = None
    route: Route | None = None
    trace: Trace = field(default_factory=Trace)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    baseline_cost_usd: float | None = None
    ttft_ms: float | None = None
    requested_model: str = ""
    finished: bool = False

    def headers(self) -> dict[str, str]:
        out = {"x-tradeoff-request-id": self.request_id}
        if self.route is not None and self.route.policy:
            out["x-tradeoff-policy"] = self.route.policy
        if self.trace.model:
            out["x-tradeoff-model"] = self.trace.model
        if self.cost_usd is not None:
            out["x-tradeoff-cost-usd"] = f"{self.cost_usd:.10f}"
        return out

    def add_usage(self, model: str, prompt: int | None, completion: int | None) -> None:
        """Count one answer's tokens (a cascade pays for every answer it asked for)."""
        if prompt is None or completion is None:
            return
        self.prompt_tokens = (self.prompt_tokens or 0) + prompt
        self.completion_tokens = (self.completion_tokens or 0) + completion
        cost = self.state.targets[model].cost(prompt, completion)
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost
        baseline = self.route.baseline if self.route else None
        if baseline in self.state.targets:
            # What the baseline model would have charged for the same tokens.
            assert baseline is not None
            base = self.state.targets[baseline].cost(prompt, completion)
            self.baseline_cost_usd = None if base is None else (self.baseline_cost_usd or 0) + base

    def finish(self, status: int, error: str | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        state = self.state
        latency_s = time.perf_counter() - self.started
        chat, route = self.chat, self.route
        policy = route.policy if route else None
        state.metrics.observe_request(
            policy=policy,
            model=self.trace.model,
            status=status,
            stream=bool(chat and chat.stream),
            latency_s=latency_s,
            cost_usd=self.cost_usd,
        )
        state.metrics.observe_fallback(policy, self.trace.fallbacks)
        state.request_log.record(
            RequestRow(
                request_id=self.request_id,
                created_at=self.created_at,
                policy=policy,
                requested_model=chat.model if chat else self.requested_model,
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
            )
        )


def resolve_route(state: ProxyState, chat: ChatRequest) -> Route:
    served = state.policies.current.get(chat.model)
    if served is not None:
        plan = served.policy.plan(RouteRequest(chat.prompt, chat.task))
        return Route(plan.models, served.name, served.baseline, plan.verifier)
    if chat.model in state.targets:
        return Route((chat.model,))
    raise unknown_model(chat.model, state.model_names())


def upstream_failure(state: ProxyState, failed: AllFailed) -> ProxyError:
    """The client's answer when no model answered, in OpenAI's shape, keys scrubbed."""
    last = failed.last
    detail = state.scrubber.text("; ".join(failed.trace.errors))
    if last.kind == "http" and not last.falls_back and last.status and last.body is not None:
        # The upstream judged the request itself wrong (400, 422): pass its verdict on.
        try:
            error = json.loads(state.scrubber.bytes(last.body)).get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        message = error.get("message") if isinstance(error, dict) else None
        return ProxyError(
            last.status,
            state.scrubber.text(str(message or detail)),
            param=error.get("param") if isinstance(error, dict) else None,
            code=error.get("code") if isinstance(error, dict) else None,
        )
    if last.kind == "timeout":
        return ProxyError(
            504,
            f"no upstream answered in time ({detail})",
            type="upstream_error",
            code="upstream_timeout",
        )
    if last.status == 429:
        headers = {"retry-after": f"{last.retry_after:g}"} if last.retry_after else None
        return ProxyError(
            429,
            f"every upstream is rate-limited ({detail}); retry later",
            type="rate_limit_error",
            code="upstream_rate_limited",
            headers=headers,
        )
    return ProxyError(
        502,
        f"no upstream could answer ({detail})",
        type="upstream_error",
        code="upstream_unavailable",
    )


async def _first_of(work: asyncio.Future[Any], receive: Any) -> Any:
    """`work`'s result, or cancel it and raise CancelledError when the client hangs up first."""
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not work.done():
        work.cancel()
        raise ClientGone
    return work.result()


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def _text_of(reply: Reply) -> str:
    try:
        message = json.loads(reply.content)["choices"][0]["message"]
        return str(message.get("content") or "")
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


async def _complete(state: ProxyState, call: Call, deadline: float) -> Reply:
    """Non-streaming: fallbacks along the plan and, with a usable verifier, escalation."""
    assert call.chat is not None and call.route is not None
    chat, route = call.chat, call.route

    async def attempt(model: str, timeout_s: float) -> Reply:
        try:
            reply = await state.adapter.complete(state.targets[model], chat.body, timeout_s)
        except UpstreamError:
            state.metrics.observe_attempt(model, ok=False)
            raise
        state.metrics.observe_attempt(model, ok=True)
        return reply

    models = list(route.models)
    verify = state.verifier(route.verifier) if route.verifier else None
    previous: Reply | None = None
    while True:
        try:
            outcome = await with_fallback(
                models,
                attempt,
                cooldowns=state.cooldowns,
                deadline=deadline,
                retries=state.settings.retries,
                trace=call.trace,
            )
        except AllFailed:
            if previous is None:
                raise
            return previous  # escalation failed: the rejected answer beats no answer
        reply, model = outcome.value, call.trace.model
        assert model is not None
        call.add_usage(model, reply.prompt_tokens, reply.completion_tokens)
        later = models[models.index(model) + 1 :] if model in models else []
        if verify is None or not later or time.monotonic() >= deadline:
            return reply
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                accepted = await verify(_text_of(reply), chat)
        except TimeoutError:
            return reply  # no time left to escalate: keep the answer we have
        if accepted:
            return reply
        previous, models = reply, later  # the verifier rejected it: escalate along the plan
        call.trace.fallbacks += 1


async def handle_chat(state: ProxyState, call: Call, raw: bytes, request: Any) -> Any:
    """Answer one parsed-or-not request; the caller turns ProxyError into a response."""
    chat = parse_chat_request(raw, request.headers)
    call.chat = chat
    call.route = resolve_route(state, chat)
    deadline = time.monotonic() + state.settings.timeout_s
    if chat.stream:
        return await _open_stream(state, call, deadline, request)
    try:
        reply = await _first_of(
            asyncio.ensure_future(_complete(state, call, deadline)), request.receive
        )
    except AllFailed as failed:
        raise upstream_failure(state, failed) from None
    call.finish(200)
    return Response(
        state.scrubber.bytes(reply.content), media_type="application/json", headers=call.headers()
    )


async def _open_stream(state: ProxyState, call: Call, deadline: float, request: Any) -> Any:
    """Streaming: fall back until an upstream sends its first event, then relay it."""
    assert call.chat is not None and call.route is not None
    chat = call.chat
    keep_usage = bool((chat.body.get("stream_options") or {}).get("include_usage"))

    async def attempt(model: str, timeout_s: float) -> Stream:
        try:
            stream = await state.adapter.open_stream(
                state.targets[model], chat.body, timeout_s, keep_usage
            )
        except UpstreamError:
            state.metrics.observe_attempt(model, ok=False)
            raise
        state.metrics.observe_attempt(model, ok=True)
        return stream

    opening = asyncio.ensure_future(
        with_fallback(
            call.route.models,
            attempt,
            cooldowns=state.cooldowns,
            deadline=deadline,
            retries=state.settings.retries,
            trace=call.trace,
        )
    )
    try:
        stream = (await _first_of(opening, request.receive)).value
    except AllFailed as failed:
        raise upstream_failure(state, failed) from None
    relay = StreamRelay(state, call, stream, deadline)
    return SSEResponse(relay.pump, relay.finish, call.headers())


class StreamRelay:
    """Relays an open upstream stream; a failure midway ends it with an OpenAI error event."""

    def __init__(self, state: ProxyState, call: Call, stream: Stream, deadline: float) -> None:
        self.state, self.call, self.stream, self.deadline = state, call, stream, deadline
        self.error: ProxyError | None = None

    async def pump(self, send: Send) -> None:
        scrub = self.state.scrubber.bytes
        events = self.stream.events()
        try:
            while True:
                try:
                    async with asyncio.timeout(max(0.0, self.deadline - time.monotonic())):
                        event = await events.__anext__()
                except StopAsyncIteration:
                    return
                if self.call.ttft_ms is None:
                    self.call.ttft_ms = (time.perf_counter() - self.call.started) * 1000
                await send({"type": "http.response.body", "body": scrub(event), "more_body": True})
        except (UpstreamError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.error = ProxyError(
                    504,
                    "the stream ran past the proxy's timeout",
                    type="upstream_error",
                    code="upstream_timeout",
                )
            else:
                message = f"the upstream stream broke off midway: {exc}"
                self.error = ProxyError(
                    502,
                    self.state.scrubber.text(message),
                    type="upstream_error",
                    code="upstream_stream_error",
                )
            data = b"data: " + json.dumps(self.error.body()).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            await events.aclose()

    async def finish(self, disconnected: bool) -> None:
        await self.stream.aclose()
        model = self.call.trace.model
        assert model is not None
        self.call.add_usage(model, self.stream.prompt_tokens, self.stream.completion_tokens)
        if disconnected:
            self.call.finish(CLIENT_CLOSED, "client disconnected mid-stream")
        elif self.error is not None:
            # The HTTP status was already 200; the log records the failure's own status so the
            # dashboard counts the request as failed.
            self.call.finish(self.error.status, self.error.message)
        else:
            self.call.finish(200)
