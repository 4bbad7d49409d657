"""A cascade on a streamed request: every answer the verifier may reject is read whole from its
upstream (buffered) and judged before the client sees a byte of it.

An accepted answer is then relayed from the buffer like a live stream (`Recorded`), so the
client's time to first token includes the cheap model's whole answer and its verification; a
rejected one is paid for and the request escalates along the plan, as a non-streamed request
does (router/pipeline.py). Once no model is left to escalate to, nothing needs judging and the
last step streams live. A model whose buffered answer breaks off fails over like any attempt
(the client has seen nothing yet). Each step's verdict uses router/verify.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tradeoff.evals.upstream import Stream, UpstreamError
from tradeoff.evals.usage import Usage
from tradeoff.router.call import Call
from tradeoff.router.fallback import AllFailed
from tradeoff.router.protocols.answer import Answer, Collector
from tradeoff.router.state import Verifier
from tradeoff.router.verify import verdict

OpenStream = Callable[[str, float], Awaitable["Stream | Recorded"]]


@dataclass
class Recorded:
    """An upstream stream read whole, replayed event by event as `Stream.events()` yields
    them (with `last` and `done` set), for `StreamRelay`."""

    model: str
    api: str
    usage: Usage | None
    text: str  # everything generated (to estimate tokens without usage)
    content: str  # the answer's text
    answer: Answer
    recorded: list[tuple[bytes, Any, bool]]
    counted: bool = False  # its tokens are already on the request's bill
    last: Any = field(default=None, init=False)
    done: bool = field(default=False, init=False)

    def generated(self) -> str:
        return self.text

    async def events(self) -> AsyncGenerator[bytes, None]:
        for event, last, done in self.recorded:
            self.last, self.done = last, done
            yield event

    async def aclose(self) -> None:
        pass


async def record(model: str, stream: Stream | Recorded) -> Recorded:
    """Read `stream` to its end (an UpstreamError if it breaks off); a recorded one (a refine
    variant's last round, router/refine.py) is replayed."""
    recorded: list[tuple[bytes, Any, bool]] = []
    collector = Collector(stream.api)
    events = stream.events()
    try:
        async for event in events:
            recorded.append((event, stream.last, stream.done))
            collector.feed(stream.last)
    finally:
        await events.aclose()
        await stream.aclose()
    if isinstance(stream, Recorded):  # keep who answered (a refine variant's escalation)
        model = stream.model
    return Recorded(model, stream.api, stream.usage, stream.text, stream.content,
                    collector.answer, recorded)  # fmt: skip


@dataclass
class Verified:
    """Where a cascade's stream comes from: a recorded answer, or the models to stream live
    (with the last rejected answer, served if they all fail)."""

    recorded: Recorded | None
    live: list[str]
    rejected: Recorded | None = None


def escalates(models: tuple[str, ...] | list[str], fallback_only: tuple[str, ...]) -> bool:
    """Whether an answer of the first model could be rejected for a later one."""
    return len([m for m in models if m not in fallback_only]) > 1


async def verified_stream(
    call: Call, open_stream: OpenStream, verify: Verifier, deadline: float
) -> Verified:
    """Buffer and judge each answer while a model is left to escalate to."""
    assert call.chat is not None and call.route is not None
    route = call.route
    models = list(route.models)
    rejected: Recorded | None = None

    async def attempt(model: str, timeout_s: float) -> Recorded:
        try:
            async with asyncio.timeout(timeout_s):
                return await record(model, await open_stream(model, timeout_s))
        except TimeoutError:
            raise UpstreamError(
                f"no whole answer within {timeout_s:.1f} s", kind="timeout"
            ) from None

    while escalates(models, route.fallback_only):
        try:
            found = await call.try_models(models, attempt, deadline)
        except AllFailed:
            if rejected is None:
                raise
            return Verified(None, [], rejected)  # the rejected answer beats no answer
        after = models[models.index(found.model) + 1 :]
        later = [m for m in after if m not in route.fallback_only]
        if not later:
            return Verified(found, [])  # nothing to escalate to: no need to judge
        accepted: int | None = None
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                accepted = await verdict(verify, [found.answer], call.chat)
        except TimeoutError:
            pass  # no time left to judge: keep the answer we have
        if accepted is not None or time.monotonic() >= deadline:
            return Verified(found, [])
        call.add_usage(found.model, found.usage, found.generated)
        found.counted = True
        rejected = found
        models = later + [m for m in after if m in route.fallback_only]
        call.trace.fallbacks += 1
    return Verified(None, models, rejected)
