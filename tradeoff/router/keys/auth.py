"""Bearer-key authentication for clients of the proxy (off when no keys are configured)."""

from __future__ import annotations

import hmac

from tradeoff.router.errors import ProxyError


class KeyCheck:
    """Accepts `Authorization: Bearer <key>` for any configured key, in constant time."""

    def __init__(self, keys: frozenset[str]) -> None:
        self._keys = [k.encode() for k in keys]

    def check(self, authorization: str | None, scheme_hint: str = "") -> None:
        """Raise a 401 `ProxyError` unless the header carries a valid key. `scheme_hint` names
        another header the route also takes the key in (Anthropic's `x-api-key`)."""
        if not self._keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        given = token.strip().encode()
        # Compare with every key (no early exit) so timing does not reveal which one matched.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(given, key)
        if scheme.lower() != "bearer" or not ok:
            how = "'Authorization: Bearer <key>'" + (
                f" or '{scheme_hint}: <key>'" if scheme_hint else ""
            )
            raise ProxyError(
                401,
                f"missing or invalid API key; send {how} with a key the proxy was started with",
                code="invalid_api_key",
            )
