"""The proxy's one error handler: any exception a route lets escape becomes one JSON answer in
the error shape of the client protocol its path belongs to (Anthropic's under /v1/messages,
OpenAI's everywhere else).

A `ProxyError` is answered as itself; a `StoreError` (the store locked or unreachable) is a 503
the client may retry; anything else is a bug, logged with its traceback and answered 500 with
`Connection: close` (router/errors.py `internal_error`). An exception once the answer has begun
cannot be answered: it goes on to the server, which drops the connection.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradeoff.evals.errors import StoreError
from tradeoff.router.call import CLIENT_CLOSED
from tradeoff.router.errors import ProxyError, internal_error, store_unavailable
from tradeoff.router.protocols.anthropic import anthropic_error
from tradeoff.router.sse import ClientGone

__all__ = ["ANTHROPIC_PATH", "ErrorBoundary", "error_response"]

log = logging.getLogger("tradeoff.router")
ANTHROPIC_PATH = "/v1/messages"  # and what lies under it (count_tokens)


class ErrorBoundary:
    """ASGI middleware around every route (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise
            await error_response(scope["path"], exc)(scope, receive, send)


def error_response(path: str, exc: Exception) -> Response:
    """The answer to `exc` escaping the route at `path` (call it in the `except` block: a bug's
    traceback is logged from there)."""
    if isinstance(exc, ClientGone):
        return Response(status_code=CLIENT_CLOSED)  # no one is left to read an error
    if isinstance(exc, ProxyError):
        error = exc
    elif isinstance(exc, StoreError):
        log.warning("%s: %s", path, exc)
        error = store_unavailable(exc)
    else:
        log.exception("%s failed", path)
        error = internal_error(exc)
    if path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/"):
        return Response(
            json.dumps(anthropic_error(error, None)),
            status_code=error.status,
            media_type="application/json",
            headers=error.headers,
        )
    return error.response()
