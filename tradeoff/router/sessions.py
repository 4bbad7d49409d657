"""Sessions: the turns of one conversation stay on one model.

A provider's prompt cache pays only while a conversation stays on one model, and a tool loop
that switches models mid-way confuses itself, so a policy routes a conversation's first turn and
later turns reuse that model (`Pin`). A session is named by, in order: the `x-tradeoff-session`
header, the body's `user`, `metadata.session_id`, or else a hash of the system prompt and the
first user message (which every later turn repeats). It is scoped to the policy asked for.
A later turn is a request that carries the conversation so far (an assistant or tool turn, or a
`previous_response_id`); a request without one starts a new conversation, is routed afresh and
pins its own model, so a user's separate questions are still routed one by one.

A pin only ever moves to a dearer model: when the pinned model fails and a fallback (or a
cascade's escalation) to a dearer one answers, later turns stay there; a cheaper fallback
answers its turn but leaves the pin where it was. A policy-level switch overrides sessions: a
pin remembers the policy version that made it, and a new version (a promotion) routes afresh;
a request served by the violation fallback is not pinned at all. A pin expires `ttl_s` after
its conversation's last turn.

The table sits behind `SessionTable` (two methods) so that proxies sharing a store can share
their sessions; `MemorySessions` is the one-process table.
"""

from __future__ import annotations

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradeoff.evals.targets import Target

__all__ = [
    "SESSION_HEADER",
    "MemorySessions",
    "Pin",
    "SessionTable",
    "continues",
    "price_rank",
    "session_id",
]

SESSION_HEADER = "x-tradeoff-session"
MAX_ID = 200  # characters of a client's own session id kept (in the table and the log)


@dataclass(frozen=True)
class Pin:
    """The model a session is on, how dear it is, and the policy version that chose it."""

    model: str
    rank: float  # the model's price per input + output token: a pin only moves up
    version: str


def price_rank(target: Target) -> float:
    """How dear a model is, to compare within a session: USD per input plus output token."""
    return sum(target.prices) if target.prices else 0.0


class SessionTable(ABC):
    """Where pins live. Implementations must make `settle` atomic per key (a shared backend:
    one transaction, or `Store.lock()`), since turns of one session may race. Both methods are
    called on the event loop: a backend that waits on a server should answer `get` from a
    local cache and write `settle` behind."""

    # Whether pins can arrive from other processes (`arrival` may be worth waiting for).
    hears_others = False

    async def arrival(self, key: str) -> None:
        """Return once `key` may have a pin another process is telling this one of; a table
        that hears no one returns at once."""
        return None

    @abstractmethod
    def get(self, key: str) -> Pin | None:
        """The pin in force for `key` (None: none, or it expired)."""

    @abstractmethod
    def settle(self, key: str, pin: Pin, *, first_turn: bool = False) -> Pin:
        """Record that `pin.model` answered a turn of `key`: it becomes the pin on a first
        turn, when there is none, when the version changed, or when it is dearer; else the pin
        stays (and its expiry is renewed). Returns the pin in force."""


class MemorySessions(SessionTable):
    """Pins in this process's memory, least recently used dropped past `max_entries`."""

    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._pins: OrderedDict[str, tuple[Pin, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pins)

    def get(self, key: str) -> Pin | None:
        with self._lock:
            found = self._pins.get(key)
            if found is None:
                return None
            pin, expires = found
            if time.monotonic() >= expires:
                del self._pins[key]
                return None
            return pin

    def settle(self, key: str, pin: Pin, *, first_turn: bool = False) -> Pin:
        now = time.monotonic()
        with self._lock:
            found = self._pins.pop(key, None)
            if found is not None and now < found[1] and not first_turn:
                old = found[0]
                if old.version == pin.version and old.rank >= pin.rank:
                    pin = old
            self._pins[key] = (pin, now + self.ttl_s)
            while len(self._pins) > self.max_entries:
                self._pins.popitem(last=False)
            return pin


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def continues(body: dict[str, Any], native: dict[str, Any] | None) -> bool:
    """Whether a request is a later turn: it carries an assistant or tool turn, or continues a
    response stored upstream."""
    if native is not None and (native.get("previous_response_id") or native.get("conversation")):
        return True
    messages = body.get("messages")
    return any(
        isinstance(m, dict) and m.get("role") in ("assistant", "tool", "function")
        for m in (messages if isinstance(messages, list) else [])
    )


def session_id(body: dict[str, Any], explicit: str | None) -> str | None:
    """The session a chat body belongs to, as logged: a client's own id verbatim, `user:<hash>`
    for a user (which may be personal data), `prompt:<hash>` of the system prompt and the first
    user message; None when there is no user message to name it by."""
    if explicit:
        return explicit[:MAX_ID]
    user = body.get("user")
    if isinstance(user, str) and user:
        return f"user:{_digest(user)}"
    metadata = body.get("metadata")
    given = metadata.get("session_id") if isinstance(metadata, dict) else None
    if isinstance(given, str) and given:
        return given[:MAX_ID]
    system: list[str] = []
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        if message.get("role") in ("system", "developer"):
            system.append(_text(message.get("content")))
        elif message.get("role") == "user":
            return f"prompt:{_digest(chr(0).join([*system, '', _text(message.get('content'))]))}"
    return None
