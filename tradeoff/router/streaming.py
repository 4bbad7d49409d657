"""Streaming requests: fall back until an upstream's first event, then relay SSE to the client.

An upstream that answers in the client's own protocol is relayed event for event; one that
answers in chat completions for a Responses or Messages client goes through the protocol's
translator (router/protocols). Fallback is possible only before the first byte reaches the
client; after it, a broken or overlong upstream stream ends with an error event in the client
protocol's shape, never a silent truncated 200. The request's log row is recorded (spooled)
before the last event goes out (`[DONE]`, `response.completed`, `message_stop`, or the error):
a client that saw the end of its stream is in the log. A stream still running when a shutdown's
`--drain-timeout` runs out ends with an error event too, and its row says 503, not 200.
A cascade's answers are verified before they are relayed (router/stream_cascade.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tradeoff.evals.refine import refine_spec
from tradeoff.evals.upstream import Stream, UpstreamError
from tradeoff.router.call import CLIENT_CLOSED, Call
from tradeoff.router.errors import ProxyError, upstream_failure
from tradeoff.router.fallback import AllFailed
from tradeoff.router.protocols.base import Protocol, chat_event
from tradeoff.router.refine import open_refined_stream
from tradeoff.router.sse import Send, SSEResponse, first_of
from tradeoff.router.state import ProxyState
from tradeoff.router.stream_cascade import Recorded, escalates, verified_stream


async def open_stream(
    state: ProxyState, call: Call, protocol: Protocol, deadline: float, request: Any
) -> Any:
    """Streaming: fall back until an upstream sends its first event, then relay it."""
    assert call.chat is not None and call.route is not None
    chat = call.chat
    # Only a client of the chat or completions API can have asked for the usage chunk.
    options = chat.body.get("stream_options") if protocol.name == chat.api else None
    keep_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    headers = protocol.native_headers()

    async def attempt(model: str, timeout_s: float) -> Stream | Recorded:
        target = state.targets[model]
        api, body = protocol.upstream(target, chat)
        refine = refine_spec(target.entry) if api == "chat" else None
        call.escalated = None  # set by a refine variant that escalates, for this attempt
        if refine is not None:  # a refine variant: the loop, buffered (router/refine.py)
            return await open_refined_stream(
                call, model, target, body, refine, timeout_s, keep_usage, headers
            )
        return await state.adapter.open_api_stream(
            target, api, body, timeout_s, keep_usage, headers=headers
        )

    route = call.route
    verify = state.verifier(route.verifier) if route.verifier else None
    models = list(route.models)
    if verify is not None and escalates(models, route.fallback_only):
        # A cascade: what the client sees is verified first (router/stream_cascade.py).
        verifying = asyncio.ensure_future(verified_stream(call, attempt, verify, deadline))
        try:
            verified = await first_of(verifying, request.receive)
        except AllFailed as failed:
            raise upstream_failure(state.scrubber, failed) from None
        if verified.recorded is not None:
            return _relay(state, call, verified.recorded, deadline, protocol)
        models = verified.live
        if not models:  # escalation failed: the rejected answer it buffered is served
            assert verified.rejected is not None
            call.trace.model = verified.rejected.model
            return _relay(state, call, verified.rejected, deadline, protocol)
    opening = asyncio.ensure_future(call.try_models(models, attempt, deadline, kind="stream"))
    try:
        stream = await first_of(opening, request.receive)
    except AllFailed as failed:
        raise upstream_failure(state.scrubber, failed) from None
    return _relay(state, call, stream, deadline, protocol)


def _relay(
    state: ProxyState, call: Call, stream: Stream | Recorded, deadline: float, protocol: Protocol
) -> SSEResponse:
    relay = StreamRelay(state, call, stream, deadline, protocol)
    return SSEResponse(relay.pump, relay.finish, call.headers(), cut=relay.cut)


class StreamRelay:
    """Relays an open upstream stream; a failure midway ends it with an error event."""

    def __init__(
        self,
        state: ProxyState,
        call: Call,
        stream: Stream | Recorded,
        deadline: float,
        protocol: Protocol,
    ) -> None:
        self.state, self.call, self.stream, self.deadline = state, call, stream, deadline
        self.protocol = protocol
        self.translator = protocol.translator() if stream.api != protocol.name else None
        self.error: ProxyError | None = None

    async def pump(self, send: Send) -> None:
        scrub = self.state.scrubber.bytes
        events = self.stream.events()
        translator = self.translator
        try:
            while True:
                try:
                    async with asyncio.timeout(max(0.0, self.deadline - time.monotonic())):
                        event = await events.__anext__()
                except StopAsyncIteration:
                    return
                if self.call.ttft_ms is None:
                    self.call.ttft_ms = (time.perf_counter() - self.call.started) * 1000
                out = [event] if translator is None else translator.feed(self.stream.last)
                kept = self.call.answer_events  # the loop grades a sampled answer, chat-shaped
                if kept is not None and self.stream.api == "chat":
                    kept.append(scrub(event))
                if self.stream.done:  # the end: the row is on disk before it leaves
                    if kept is not None and self.stream.api != "chat":
                        kept.append(scrub(chat_event(self.stream.content)))
                    if translator is not None:
                        out += translator.finish(self.stream.usage)
                    self.settle(200)
                if out:
                    body = scrub(b"".join(out))
                    await send({"type": "http.response.body", "body": body, "more_body": True})
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
            data = self.protocol.stream_error(self.error)
            self.settle(self.error.status, self.error.message)
            await send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception as exc:  # a bug: logged as a 500, then raised for uvicorn to report
            self.error = ProxyError(
                500, f"internal error: {type(exc).__name__}", type="server_error"
            )
            raise
        finally:
            await events.aclose()

    def cut(self) -> bytes:
        """The error event of a stream the proxy cut short (shutdown past --drain-timeout);
        the log row records it as a 503."""
        self.error = ProxyError(
            503,
            "the proxy shut down before the stream ended; retry the request",
            type="server_error",
            code="proxy_shutting_down",
        )
        return self.state.scrubber.bytes(self.protocol.stream_error(self.error))

    def settle(self, status: int, error: str | None = None) -> None:
        """Count the stream's tokens and log the request, once."""
        if self.call.finished:
            return
        model = self.call.trace.model
        assert model is not None
        stream = self.stream
        if isinstance(stream, Recorded):  # an escalated refine variant's: its model's answer
            model = stream.model
        if not (isinstance(stream, Recorded) and stream.counted):
            self.call.add_usage(model, stream.usage, lambda: stream.text)
        self.call.finish(status, error)

    async def finish(self, disconnected: bool) -> None:
        await self.stream.aclose()
        if disconnected:
            self.settle(CLIENT_CLOSED, "client disconnected mid-stream")
        elif self.error is not None:
            # The HTTP status was already 200; the log records the failure's own status so the
            # dashboard counts the request as failed.
            self.settle(self.error.status, self.error.message)
        else:
            self.settle(200)
