"""An ASGI response for relayed SSE streams that notices a client hanging up.

Starlette's StreamingResponse cancels its iterator on disconnect, but a generator that never
started never runs its `finally`; here `finish(disconnected)` always runs exactly once, so the
upstream call is closed and the request logged whatever happens. A stream cancelled from the
server's side (a shutdown past `--drain-timeout`) is not left truncated: `cut()` gives the
protocol's error event, which goes out before the response ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns when the client disconnects (call only after the request body was read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class SSEResponse:
    """Runs `pump(send)` to relay events; cancels it if the client leaves; then `finish`."""

    def __init__(
        self,
        pump: Callable[[Send], Awaitable[None]],
        finish: Callable[[bool], Awaitable[None]],
        headers: dict[str, str],
        cut: Callable[[], bytes] | None = None,
    ) -> None:
        self.pump = pump
        self.finish = finish
        self.cut = cut
        self.headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # proxies in front must not buffer the stream
            **headers,
        }

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        disconnected = False
        sender: asyncio.Future[None] | None = None
        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(k.encode(), v.encode()) for k, v in self.headers.items()],
                }
            )
            sender = asyncio.ensure_future(self.pump(send))
            try:
                await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                await self._end_cut(sender, send)
                raise
            if sender.done():
                sender.result()  # a bug in pump must surface, not vanish
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                disconnected = True
        finally:
            for task in (watcher, sender):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.finish(disconnected)

    async def _end_cut(self, sender: asyncio.Future[None], send: Send) -> None:
        """The server cancelled the stream (shutdown): stop relaying, then send the protocol's
        error event and end the response, so the client sees an error, not a clean end."""
        if self.cut is None or sender.done():
            return
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):  # a client that stopped reading gets no more time
                await send({"type": "http.response.body", "body": self.cut(), "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def first_of(work: asyncio.Future[Any], receive: Receive) -> Any:
    """`work`'s result; if the client hangs up first, cancel `work` and raise ClientGone."""
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    gone = False
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        gone = not work.done()
    finally:
        watcher.cancel()
        if not work.done():  # the client left, or this handler itself was cancelled
            work.cancel()
    if gone:
        raise ClientGone
    return work.result()


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""
