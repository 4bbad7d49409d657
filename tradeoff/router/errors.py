"""Errors the proxy answers, in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Client mistakes are 4xx `invalid_request_error`s; upstream failures are 502/504 (or the upstream's
429) so a client can tell "my request was wrong" from "try again later".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

if TYPE_CHECKING:
    from tradeoff.evals.errors import StoreError
    from tradeoff.router.fallback import AllFailed
    from tradeoff.router.scrub import Scrubber


class ProxyError(Exception):
    """An error that becomes one OpenAI-shaped JSON response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(self.body()),
            status_code=self.status,
            media_type="application/json",
            headers={**self.headers, **(headers or {})},
        )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ProxyError:
    return ProxyError(400, message, param=param, code=code)


def internal_error(exc: BaseException, request_id: str | None = None) -> ProxyError:
    """A bug's 500 (its traceback is in the proxy's log). The connection is closed after it:
    the bug may have left the request's body half read."""
    where = f" under request id {request_id}" if request_id else ""
    return ProxyError(
        500,
        f"internal error ({type(exc).__name__}) in the proxy; its log has the details{where}",
        type="server_error",
        code="internal_error",
        headers={"connection": "close"},
    )


def store_unavailable(exc: StoreError) -> ProxyError:
    """The store is locked or unreachable: a 503 the client may retry."""
    return ProxyError(
        503, f"the store is busy ({exc}); retry", type="server_error", code="store_unavailable"
    )


def upstream_failure(scrubber: Scrubber, failed: AllFailed) -> ProxyError:
    """The client's answer when no model answered, in OpenAI's shape, keys scrubbed."""
    last = failed.last
    detail = scrubber.text("; ".join(failed.trace.errors))
    if last.kind == "http" and not last.falls_back and last.status and last.body is not None:
        # The upstream judged the request itself wrong (400, 422): pass its verdict on.
        try:
            error = json.loads(scrubber.bytes(last.body)).get("error")
        except (ValueError, AttributeError):
            error = None
        if not isinstance(error, dict):
            error = {}
        return ProxyError(
            last.status,
            scrubber.text(str(error.get("message") or detail)),
            param=error.get("param"),
            code=error.get("code"),
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
