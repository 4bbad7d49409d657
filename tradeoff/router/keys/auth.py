"""Who is calling: bearer keys and their roles (authentication is off when no key is configured).

Two roles. A **client** key (`--api-key`, `$TRADEOFF_API_KEYS`, a key file, or a named key of
`--keys`) may call the model APIs and `/v1/models`, and rate only its own requests. An
**admin** key (`--admin-key`, `$TRADEOFF_ADMIN_KEYS`) may do all that, read `/metrics` and
`/tradeoff/status`, and rate any request. Once any key is configured, a request without a valid
one gets 401, and a client key on an admin route 403 (so with client keys but no admin key, the
admin routes are closed). With no key at all, every route is open, as for a local proxy.

A request's owner is the `key_name` of its log row: a named key's name, `key:<first 12 hex
digits of SHA-256(key)>` for an unnamed client key, None for an admin key or with auth off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from tradeoff.evals.errors import ConfigError
from tradeoff.router.errors import ProxyError
from tradeoff.router.keys.keyfile import KeyBook, KeySpec

__all__ = ["OPEN", "Caller", "KeyCheck", "plain_key_name"]


@dataclass(frozen=True)
class Caller:
    """The key a request came with: its name in the request log, its role, its limits."""

    name: str | None = None  # the request log's `key_name` (None: an admin key, or auth off)
    admin: bool = False
    spec: KeySpec | None = None  # a named key of `serve --keys` (its limits)

    def owns(self, key_name: object) -> bool:
        """Whether this caller may rate a request logged with `key_name`."""
        return self.admin or (self.name is not None and key_name == self.name)


OPEN = Caller(admin=True)  # no key configured: every caller may do everything


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def plain_key_name(secret: str) -> str:
    """How an unnamed client key's requests are logged: a digest, never the key itself."""
    return f"key:{_digest(secret).hex()[:12]}"


class KeyCheck:
    """The proxy's keys, looked up by digest (a dict lookup on the secret itself could leak its
    prefix through timing)."""

    def __init__(
        self,
        clients: frozenset[str] = frozenset(),
        admins: frozenset[str] = frozenset(),
        book: KeyBook | None = None,
    ) -> None:
        self._callers: dict[bytes, Caller] = {}
        for secret in clients:
            self._callers[_digest(secret)] = Caller(plain_key_name(secret))
        for spec in book.keys.values() if book else ():
            self._callers[_digest(spec.secret)] = Caller(spec.name, spec=spec)
        for secret in admins:
            if _digest(secret) in self._callers:
                raise ConfigError(
                    "an admin key is also a client key; give admins a key of their own"
                )
            self._callers[_digest(secret)] = Caller(admin=True)
        self.has_admins = bool(admins)

    @property
    def open(self) -> bool:
        return not self._callers

    def caller(self, headers: Mapping[str, str], key_header: str | None = None) -> Caller:
        """The caller a request's `Authorization: Bearer <key>` names, or a 401 `ProxyError`.
        `key_header` names another header the route takes the key in (Anthropic's
        `x-api-key`), read first when present."""
        if self.open:
            return OPEN
        given = headers.get(key_header) if key_header else None
        if given is not None:
            secret = given.strip()
        else:
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            secret = token.strip() if scheme.lower() == "bearer" else ""
        found = self._callers.get(_digest(secret)) if secret else None
        if found is None:
            how = "'Authorization: Bearer <key>'" + (
                f" or '{key_header}: <key>'" if key_header else ""
            )
            raise ProxyError(
                401,
                f"missing or invalid API key; send {how} with a key the proxy was started with",
                code="invalid_api_key",
            )
        return found

    def admin(self, headers: Mapping[str, str]) -> Caller:
        """The caller, if an admin key (or auth is off); else a 401 or 403 `ProxyError`."""
        caller = self.caller(headers)
        if caller.admin:
            return caller
        fix = (
            "use an admin key"
            if self.has_admins
            else "start the proxy with --admin-key (or $TRADEOFF_ADMIN_KEYS) and use that key"
        )
        raise ProxyError(
            403,
            f"this route needs an admin key; {fix}",
            type="permission_error",
            code="admin_key_required",
        )
