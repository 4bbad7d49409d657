"""Reading a request's body: JSON only (415), bounded in size (413) and in time (408)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request

from tradeoff.router.errors import ProxyError
from tradeoff.router.settings import Settings
from tradeoff.router.sse import ClientGone

__all__ = ["JsonReader", "check_content_type", "json_reader", "read_body"]

JsonReader = Callable[[Request], Awaitable[bytes]]


def check_content_type(value: str | None) -> None:
    """JSON bodies only (`application/json`, or any `application/*+json`), else 415.

    A missing Content-Type is refused too: the official clients always send one, and a browser
    page can POST a body without one (or as text/plain or a form) to a proxy on localhost
    without any CORS preflight; requiring JSON keeps such pages out even with auth off.
    """
    media = (value or "").partition(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    got = f"got {value!r}" if value else "no Content-Type header was sent"
    raise ProxyError(
        415,
        f"the request body must be JSON sent with 'Content-Type: application/json' ({got}); "
        "with curl, add -H 'Content-Type: application/json'",
        code="unsupported_media_type",
    )


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, or a 413 past `limit` bytes, a 408 after `timeout_s`, `ClientGone`."""
    declared = request.headers.get("content-length")
    too_big = ProxyError(
        413,
        f"the request body is larger than {limit} bytes; send a smaller request",
        code="request_too_large",
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_big
                chunks.append(chunk)
    except TimeoutError:
        raise ProxyError(
            408,
            f"the request body did not arrive within {timeout_s:g}s; send it in one go",
            code="request_timeout",
            headers={"connection": "close"},  # the rest of the body may still be on its way
        ) from None
    except ClientDisconnect:
        raise ClientGone("client disconnected mid-upload") from None
    return b"".join(chunks)


def json_reader(settings: Settings) -> JsonReader:
    """The proxy's body reader: JSON only, within `max_body_bytes` and `body_timeout_s`."""

    async def read_json(request: Request) -> bytes:
        check_content_type(request.headers.get("content-type"))
        return await read_body(request, settings.max_body_bytes, settings.body_timeout_s)

    return read_json
