"""Per-key limits (router/keys/keyfile.py): admit a request before any upstream call, settle after.

**Exactness by reservation.** A request of a limited key is admitted only if the minute's count
stays within `rpm` and `spent + reserved + its own reservation <= budget`, where `reserved` sums
the reservations of the key's requests still in flight (on every replica). The reservation is
what the request can cost at most as far as the proxy can tell: its prompt's counted tokens
plus its `max_tokens` (or `max_completion_tokens`; `DEFAULT_COMPLETION_TOKENS` when it sets
neither), times its `n`, at the dearest price in its plan (the sum over the plan when a verifier
may escalate through it, since each answer is paid). When it finishes, its reservation is
replaced by what it cost. So a budget that allows K requests admits K however many replicas
share it; spend overshoots a budget only by what requests in flight cost beyond their
reservations (an answer longer than the reservation assumed, a provider counting more prompt
tokens than the proxy did).

**The 429s.** Over `rpm`: `Retry-After` is the rest of the minute. Over budget while other
requests' reservations are in flight and the spend alone leaves room for this one: they may
settle below what they reserved, so `Retry-After: 1`; when the spend alone leaves no room, the
rest of the period. Both in the client protocol's error shape (OpenAI's `rate_limit_error` /
`insufficient_quota` types, 429).

Backends: `MemoryLimits` (one process: the DuckDB store, or no shared store) and
`router.keys.limits_pg.PostgresLimits` (every replica on one PostgreSQL store).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradeoff.evals.store import Store, is_url, resolve_db
from tradeoff.router.errors import ProxyError
from tradeoff.router.keys.keyfile import (
    KeySpec,
    minute_start,
    period_end,
    period_start,
    to_nusd,
    utcnow,
)
from tradeoff.router.metrics import family
from tradeoff.router.request import input_tokens

if TYPE_CHECKING:
    from tradeoff.router.call import Call
    from tradeoff.router.log.request_log import RequestLog
    from tradeoff.router.state import ProxyState

__all__ = [
    "DEFAULT_COMPLETION_TOKENS",
    "Admission",
    "Limits",
    "MemoryLimits",
    "PeriodCounts",
    "Refused",
    "admit_call",
    "build_limits",
    "reservation_nusd",
    "settle_call",
]

log = logging.getLogger("tradeoff.router")
DEFAULT_COMPLETION_TOKENS = 1024  # reserved for an answer when a request sets no max_tokens


@dataclass(frozen=True)
class Admission:
    """An admitted request's claim: settled exactly once with what it cost."""

    key: KeySpec
    period_start: datetime
    reserved_nusd: int
    holder: str = ""  # the backend's reservation holder (PostgreSQL: the replica id)
    local: bool = False  # admitted by a replica's own share while the shared store was down
    request_id: str = ""


class Refused(Exception):
    """A request over one of its key's limits."""

    def __init__(self, key: KeySpec, limit: str, retry_after_s: float, message: str) -> None:
        super().__init__(message)
        self.key, self.limit, self.message = key, limit, message
        self.retry_after_s = max(1, math.ceil(retry_after_s))

    def error(self) -> ProxyError:
        budget = self.limit == "budget"
        return ProxyError(
            429,
            self.message,
            type="insufficient_quota" if budget else "rate_limit_error",
            code="budget_exceeded" if budget else "rate_limit_exceeded",
            headers={"retry-after": str(self.retry_after_s)},
        )


@dataclass
class PeriodCounts:
    """One key's counts in one budget period (amounts in nano-USD)."""

    spent: int = 0
    reserved: int = 0
    minute: datetime | None = None
    minute_requests: int = 0


def verdict(
    key: KeySpec, usage: PeriodCounts, reserve: int, now: datetime, start: datetime
) -> Refused | None:
    """Why `usage` cannot take one more request reserving `reserve` now (None: it can)."""
    minute = minute_start(now)
    full = usage.minute == minute and usage.minute_requests >= (key.rpm or 0)
    if key.rpm is not None and (key.rpm <= 0 or full):  # a replica's share may be 0
        left = 60 - (now - minute).total_seconds()
        return Refused(
            key, "rpm", left, f"key {key.name!r} is over its limit of {key.rpm} requests per "
            f"minute; retry in {max(1, math.ceil(left))}s",
        )  # fmt: skip
    budget = key.budget_nusd
    if budget is None or usage.spent + usage.reserved + reserve <= budget:
        return None
    period = key.budget_period
    if reserve > budget:
        left = (period_end(period, start) - now).total_seconds()
        return Refused(
            key, "budget", left, f"this request could cost ${reserve / 1e9:.6f}, more than key "
            f"{key.name!r}'s whole {period}ly budget of ${key.budget_usd:g}; lower max_tokens",
        )  # fmt: skip
    if usage.reserved and usage.spent + reserve <= budget:
        return Refused(
            key, "budget", 1, f"key {key.name!r}'s {period}ly budget of ${key.budget_usd:g} is "
            "held by requests in flight; retry in a second",
        )  # fmt: skip
    left = (period_end(period, start) - now).total_seconds()
    return Refused(
        key, "budget", left, f"key {key.name!r} has spent its {period}ly budget of "
        f"${key.budget_usd:g} (${usage.spent / 1e9:.6f}); it renews at "
        f"{period_end(period, start):%Y-%m-%d %H:%M} UTC",
    )  # fmt: skip


class Limits(ABC):
    """Where limits are counted. `admit` raises `Refused`; `settle` never blocks or fails."""

    def __init__(self) -> None:
        self.refusals: Counter[tuple[str, str]] = Counter()  # (key, limit) -> 429s answered

    def render(self) -> list[str]:
        """Prometheus lines: the 429s each key got, by limit."""
        refusals = [
            ((("key", key), ("limit", limit)), count)
            for (key, limit), count in sorted(self.refusals.items())
        ]
        return family("tradeoff_key_refusals_total", "counter",
                      "Requests refused with 429 by their key's limits.", refusals)  # fmt: skip

    @property
    def pending(self) -> int:
        """Settlements not yet in the shared store (0: counted in this process only)."""
        return 0

    async def start(self) -> None:
        """Begin (connect, register, seed); called in the proxy's lifespan."""
        return None

    async def stop(self) -> None:
        """Settle what is pending, as far as the store allows; release what this process holds."""
        return None

    @abstractmethod
    async def admit(self, key: KeySpec, reserve_nusd: int, request_id: str = "") -> Admission:
        """Count request `request_id` of `key`, reserving `reserve_nusd`, or raise `Refused`."""

    @abstractmethod
    def settle(self, admission: Admission, cost_nusd: int) -> None:
        """Replace an admission's reservation by what the request cost."""


class MemoryLimits(Limits):
    """Limits in this process's memory: exact for one process. `seed` is what each key had
    already used of its current period (after a restart: from the request log)."""

    def __init__(
        self,
        keys: list[KeySpec],
        store: Store | None = None,
        written: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self.keys = {k.name: k for k in keys}
        self.store = store
        self._written = written  # waits until the request log holds the replayed spool rows
        self._usage: dict[tuple[str, datetime], PeriodCounts] = {}

    async def start(self) -> None:
        if self.store is not None:
            await asyncio.to_thread(self._from_store, self.store)

    def _from_store(self, store: Store) -> None:
        """Publish the keys, and count what each used of its period before this process
        started (a restart must not reset a budget): the request log holds every request."""
        from tradeoff.router.keys.usage import period_counts, publish_keys

        publish_keys(store, list(self.keys.values()))
        if self._written is not None:
            self._written()
        now = utcnow()
        for key in self.keys.values():
            spent, _, _, last_minute = period_counts(store, key.name, key.budget_period, now)
            self.seed(key, to_nusd(spent), last_minute, now)

    def usage(self, key: KeySpec, now: datetime | None = None) -> PeriodCounts:
        start = period_start(key.budget_period, now or utcnow())
        found = self._usage.get((key.name, start))
        if found is None:
            # One period at a time per key: a new period starts from nothing.
            self._usage = {k: u for k, u in self._usage.items() if k[0] != key.name}
            found = self._usage[(key.name, start)] = PeriodCounts()
        return found

    def seed(self, key: KeySpec, spent_nusd: int, minute_requests: int, now: datetime) -> None:
        usage = self.usage(key, now)
        usage.spent += spent_nusd
        usage.minute, usage.minute_requests = minute_start(now), minute_requests

    async def admit(self, key: KeySpec, reserve_nusd: int, request_id: str = "") -> Admission:
        return self.admit_now(key, reserve_nusd, utcnow())

    def admit_now(self, key: KeySpec, reserve_nusd: int, now: datetime) -> Admission:
        start = period_start(key.budget_period, now)
        usage = self.usage(key, now)
        refused = verdict(key, usage, reserve_nusd, now, start)
        if refused is not None:
            raise refused
        minute = minute_start(now)
        usage.minute_requests = usage.minute_requests + 1 if usage.minute == minute else 1
        usage.minute = minute
        usage.reserved += reserve_nusd
        return Admission(key, start, reserve_nusd)

    def settle(self, admission: Admission, cost_nusd: int) -> None:
        usage = self._usage.get((admission.key.name, admission.period_start))
        if usage is None:
            return  # the period is over: its spend no longer limits anything
        usage.reserved -= admission.reserved_nusd
        usage.spent += cost_nusd


def _completion_cap(body: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_COMPLETION_TOKENS


def reservation_nusd(state: ProxyState, call: Call) -> int:
    """What the request can cost at most, as far as the proxy can tell (module docstring)."""
    chat, route = call.chat, call.route
    if chat is None or route is None or not route.models:
        return 0
    body = chat.body
    first = state.targets.get(route.models[0])
    prompt = input_tokens(chat, first.upstream_model if first else None)
    n = body.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
    cap = _completion_cap(body)
    costs = []
    for i, model in enumerate(dict.fromkeys(route.models)):
        target = state.targets.get(model)
        samples = max(choices, route.samples if i == 0 else 1)
        cost = target.cost(prompt * samples, cap * samples) if target is not None else None
        costs.append(to_nusd(cost, up=True))
    return sum(costs) if route.verifier else max(costs)


async def admit_call(state: ProxyState, call: Call) -> None:
    """Before a request's first upstream call: admit it under its key's limits or raise 429."""
    limits = state.limits
    key = call.key
    if limits is None or key is None or not key.limited or call.admission is not None:
        return
    reserve = reservation_nusd(state, call) if key.budget_usd is not None else 0
    try:
        call.admission = await limits.admit(key, reserve, call.request_id)
    except Refused as refused:
        limits.refusals[(key.name, refused.limit)] += 1
        raise refused.error() from None


def settle_call(state: ProxyState, call: Call) -> None:
    """When a request finishes: its reservation becomes what it cost (never raises)."""
    admission, call.admission = call.admission, None
    limits = state.limits
    if admission is None or limits is None:
        return
    try:
        limits.settle(admission, to_nusd(call.cost_usd))
    except Exception:  # a limits bug must never fail a request that was answered
        log.exception("limits: settling %s failed", call.request_id)


def build_limits(
    keys: list[KeySpec],
    db: str | os.PathLike[str] | None,
    request_log: RequestLog | None = None,
    *,
    workers: int = 1,
) -> Limits | None:
    """The limits of `serve --keys`: shared through a PostgreSQL store, else in memory (one
    process: several processes on a DuckDB file could not share them exactly)."""
    if not keys:
        return None
    target = resolve_db(db)
    store = Store(target)
    if is_url(target):
        from tradeoff.router.keys.limits_pg import PostgresLimits

        return PostgresLimits(str(target), keys, store=store)
    if workers > 1:
        from tradeoff.evals.errors import UsageError

        raise UsageError(
            "--keys with --workers needs a PostgreSQL store (--db postgresql://...): limits "
            "must be counted in one place; or run one worker"
        )
    written = (lambda: request_log.wait_written(request_log.drain_s)) if request_log else None
    return MemoryLimits(keys, store, written)
