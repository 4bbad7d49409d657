"""Removes upstream provider keys from anything the proxy sends or logs."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Scrubber:
    """Replaces every known secret value with `***` in text and bytes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Very short values would mask ordinary text; real keys are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)
        self._secret_bytes = [s.encode() for s in self._secrets]

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def bytes(self, value: bytes) -> bytes:
        for secret in self._secret_bytes:
            if secret in value:
                value = value.replace(secret, MASK.encode())
        return value
