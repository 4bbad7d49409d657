"""OpenTelemetry traces over OTLP/HTTP, on when the standard variables say where to send them.

`tracing()` is None unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
is set (and `OTEL_SDK_DISABLED` is not true). Then the official SDK builds the spans and its
OTLP/HTTP exporter sends them, reading the usual variables itself: the endpoint, headers and
timeout, `OTEL_SERVICE_NAME` (default "tradeoff") and `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER`, `OTEL_PROPAGATORS` (W3C `traceparent` by default).

Export never slows or fails the work it describes: finished spans go into a bounded queue that
one background thread drains in batches; a span that finds the queue full, or whose batch the
collector does not take, is dropped and counted (`dropped`, shown in the proxy's /metrics).

Attributes follow OpenTelemetry's GenAI semantic conventions (`gen_ai.*`); the project's own go
under `tradeoff.*`. The SDK is the optional extra `tradeoff[otel]`.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from tradeoff.evals.span_queue import SpanQueue
    from tradeoff.evals.targets import Target

__all__ = ["CallSpan", "Tracing", "mark_failed", "model_attributes", "provider_name", "tracing"]

log = logging.getLogger("tradeoff.telemetry")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class Tracing:
    """One process's tracer and its export queue."""

    def __init__(self, provider: TracerProvider, spans: SpanQueue) -> None:
        self.provider = provider
        self.queue = spans
        self.tracer: Tracer = provider.get_tracer("tradeoff")

    def shutdown(self, timeout_s: float = 2.0) -> None:
        self.queue.shutdown(timeout_s)


def tracing() -> Tracing | None:
    """Tracing as the environment configures it (None: off). The caller owns it: one per
    proxy process or eval run, shut down when that ends."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        from tradeoff.evals.span_queue import SpanQueue
    except ImportError:
        log.warning(
            "%s is set but the OpenTelemetry SDK is not installed: no traces are exported "
            "(pip install 'tradeoff[otel]')",
            next(name for name in ENDPOINT_VARIABLES if os.environ.get(name)),
        )
        return None
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    defaults = {} if named else {"service.name": "tradeoff"}
    provider = TracerProvider(resource=Resource.create(defaults))
    spans = SpanQueue(OTLPSpanExporter())
    provider.add_span_processor(spans)
    return Tracing(provider, spans)


def provider_name(target: Target) -> str:
    """The provider, as litellm's model prefix names it ("openai" for a bare name)."""
    model = target.entry.litellm_model
    return model.split("/", 1)[0] if "/" in model else "openai"


def model_attributes(target: Target) -> dict[str, Any]:
    """A client span's attributes for calling `target`: provider and model, GenAI-named."""
    provider = provider_name(target)
    return {
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,  # the older name, still read by many tools
        "gen_ai.request.model": target.provider_model,
        "tradeoff.model": target.name,
    }


def mark_failed(span: Any, error_type: str, message: str) -> None:
    """Mark `span` failed: `error.type` and an ERROR status with `message`."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, message))


class CallSpan:
    """One measured call's client span (`tradeoff eval`); a no-op without tracing."""

    def __init__(self, tracing: Tracing | None, target: Target, **more: Any) -> None:
        self.span: Any = None
        if tracing is None:
            return
        from opentelemetry.trace import SpanKind

        attributes = {
            "gen_ai.operation.name": "chat",
            **model_attributes(target),
            **{f"tradeoff.{k}": v for k, v in more.items() if v is not None},
        }
        self.span = tracing.tracer.start_span(
            f"chat {target.name}", kind=SpanKind.CLIENT, attributes=attributes
        )

    def end(self, result: Any, score: float | None = None) -> None:
        """Close it with a `CallResult`'s tokens, cost, latency and error, and the grade."""
        if self.span is None:
            return
        if score is not None:
            self.span.set_attribute("tradeoff.score", score)
        self.span.set_attributes(
            {
                "gen_ai.usage.input_tokens": result.prompt_tokens,
                "gen_ai.usage.output_tokens": result.completion_tokens,
                "tradeoff.cost_usd": result.cost_usd,
                "tradeoff.attempts": result.attempts,
            }
        )
        if result.ttft_ms is not None:
            self.span.set_attribute("tradeoff.time_to_first_token_ms", result.ttft_ms)
        if result.error is not None:
            mark_failed(self.span, str(result.status or "error"), result.error[:200])
        self.span.end()
