"""The proxy's traces (evals/telemetry.py): a server span per request, a client span per attempt.

The request's span continues the client's `traceparent` and carries the routing decision; each
upstream attempt (a fallback, a cascade's escalation, a retry) is a child span of its own, named
`{operation} {model}` as the GenAI conventions name client calls. A stream's attempt span ends
at the upstream's first event (what fallback waits for); the request span covers the whole
stream. Shadow calls are spans of their own, linked to the request they shadow, so they never
count toward the client's time. Prompt and answer text are never attributes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tradeoff.evals.telemetry import Tracing, mark_failed, model_attributes

if TYPE_CHECKING:
    from tradeoff.evals.targets import Target
    from tradeoff.router.call import Call

__all__ = ["Attempt", "ShadowSpan", "end_request", "start_attempt", "start_request", "start_shadow"]

# The GenAI operation each client protocol performs.
OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "anthropic": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}


def start_request(
    tracing: Tracing, call: Call, method: str, path: str, headers: Mapping[str, str]
) -> None:
    """Open the request's server span (continuing the client's trace context) on `call`."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    parent = propagate.extract(dict(headers))
    call.span = tracing.tracer.start_span(
        f"{method} {path}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": path,
            "gen_ai.operation.name": OPERATIONS.get(call.protocol, call.protocol),
            "tradeoff.request_id": call.request_id,
        },
    )


def end_request(call: Call, status: int, error: str | None) -> None:
    """Close the request's span with what happened: models, tokens, cost, the decision."""
    span = call.span
    if span is None:
        return
    chat, route, usage = call.chat, call.route, call.usage
    operation = OPERATIONS.get(call.protocol, call.protocol)
    attributes: dict[str, Any] = {
        "http.response.status_code": status,
        "tradeoff.attempts": call.trace.attempts,
        "tradeoff.fallbacks": call.trace.fallbacks,
    }
    if chat is not None:
        attributes["gen_ai.request.model"] = chat.model
        attributes["tradeoff.stream"] = chat.stream
        if chat.task:
            attributes["tradeoff.task"] = chat.task
        span.update_name(f"{operation} {chat.model}")
    if call.trace.model:
        attributes["gen_ai.response.model"] = call.trace.model
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.prompt
        attributes["gen_ai.usage.output_tokens"] = usage.completion
        if usage.cached:
            attributes["tradeoff.usage.cache_read_tokens"] = usage.cached
        if usage.cache_write:
            attributes["tradeoff.usage.cache_write_tokens"] = usage.cache_write
    if route is not None:
        _set(attributes, "tradeoff.policy", route.policy)
        _set(attributes, "tradeoff.policy.version", route.version)
        _set(attributes, "tradeoff.policy.baseline", route.baseline)
        _set(attributes, "tradeoff.route.reason", route.reason)
        attributes["tradeoff.route.models"] = list(route.models)
        _set(attributes, "tradeoff.session", route.session)
    _set(attributes, "tradeoff.cost_usd", call.cost_usd)
    _set(attributes, "tradeoff.baseline_cost_usd", call.baseline_cost_usd)
    _set(attributes, "tradeoff.cost_estimated", call.cost_estimated or None)
    if call.ttft_ms is not None:
        attributes["tradeoff.time_to_first_token_ms"] = call.ttft_ms
    if call.caller is not None:
        _set(attributes, "tradeoff.key", call.caller.name)
    span.set_attributes(attributes)
    if status >= 500 or (error and status >= 400):
        mark_failed(span, str(status), error or "")
    span.end()  # kept on the call: a shadow call links to it afterwards


class Attempt:
    """One upstream attempt's client span (a no-op without tracing)."""

    def __init__(self, call: Call, target: Target | None, model: str) -> None:
        self.started = time.perf_counter()
        self.span: Any = None
        tracing = call.state.telemetry
        if tracing is None or call.span is None:
            return
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        operation = OPERATIONS.get(call.protocol, call.protocol)
        attributes: dict[str, Any] = {"gen_ai.operation.name": operation}
        if target is not None:
            attributes.update(model_attributes(target))
        else:
            attributes.update({"gen_ai.request.model": model, "tradeoff.model": model})
        self.span = tracing.tracer.start_span(
            f"{operation} {model}",
            context=trace.set_span_in_context(call.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )

    def end(self, error: BaseException | None = None) -> float:
        """Close the span; returns the attempt's duration in seconds."""
        elapsed = time.perf_counter() - self.started
        if self.span is not None:
            if error is not None:
                status = getattr(error, "status", None)
                mark_failed(self.span, str(status or type(error).__name__), str(error)[:200])
            self.span.end()
        return elapsed


def start_shadow(call: Call) -> Any:
    """The trace of a shadow call of `call`, for `ShadowJob.trace`: (tracing, the request span's
    context to link to), or None when tracing is off."""
    tracing = call.state.telemetry
    if tracing is None or call.span is None:
        return None
    return tracing, call.span.get_span_context()


class ShadowSpan:
    """A shadow call's span: a root of its own (never on the client's time), linked to the
    request it shadows."""

    def __init__(self, trace: Any, target: Target, policy: str, request_id: str) -> None:
        self.span: Any = None
        if trace is None:
            return
        from opentelemetry.trace import Link, SpanKind

        tracing, context = trace
        self.span = tracing.tracer.start_span(
            f"chat {target.name}",
            kind=SpanKind.CLIENT,
            links=[Link(context)],
            attributes={
                "gen_ai.operation.name": "chat",
                **model_attributes(target),
                "tradeoff.shadow": True,
                "tradeoff.policy": policy,
                "tradeoff.request_id": request_id,
            },
        )

    def end(self, error: str | None = None, **attributes: Any) -> None:
        if self.span is None:
            return
        self.span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if error is not None:
            mark_failed(self.span, "shadow_failed", error[:200])
        self.span.end()


def start_attempt(call: Call, model: str) -> Attempt:
    return Attempt(call, call.state.targets.get(model), model)


def _set(attributes: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        attributes[name] = value
