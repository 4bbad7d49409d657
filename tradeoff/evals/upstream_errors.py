"""`UpstreamError`: every failed upstream call, saying whether another try (or model) may help."""

from __future__ import annotations

__all__ = ["FALLBACK_STATUS", "RETRYABLE_STATUS", "UpstreamError"]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})  # 529: overloaded
# The upstream refused *us* (bad key, unknown model there): another model may still answer.
FALLBACK_STATUS = RETRYABLE_STATUS | {401, 403, 404}


class UpstreamError(Exception):
    """A failed call. `status` is the upstream's HTTP status (None: timeout or no connection)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str = "http",  # http | timeout | connection | config
        retry_after: float | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.retry_after = retry_after
        self.body = body

    @property
    def retryable(self) -> bool:
        """The same model may answer if asked again."""
        return self.kind in ("timeout", "connection") or self.status in RETRYABLE_STATUS

    @property
    def falls_back(self) -> bool:
        """Another model may answer; False for the client's own mistakes (400, 422, ...)."""
        return self.kind != "http" or self.status in FALLBACK_STATUS
