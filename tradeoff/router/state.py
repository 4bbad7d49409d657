"""Everything one running proxy holds, built once by `create_app` (no globals)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tradeoff.evals.errors import TradeoffError
from tradeoff.evals.reviewers import Reviewer
from tradeoff.evals.targets import Target
from tradeoff.evals.telemetry import Tracing
from tradeoff.evals.upstream import Adapter
from tradeoff.router.fallback import Cooldowns
from tradeoff.router.keys.auth import KeyCheck
from tradeoff.router.log.request_log import RequestLog
from tradeoff.router.metrics import Metrics
from tradeoff.router.reload import PolicyBook, ServedPolicy
from tradeoff.router.scrub import Scrubber
from tradeoff.router.sessions import SessionTable
from tradeoff.router.settings import Settings

if TYPE_CHECKING:
    from tradeoff.router.keys.limits import Limits
    from tradeoff.router.loop.live import LiveLoop
    from tradeoff.router.replicas.shared import Replicated
    from tradeoff.router.request import ChatRequest

log = logging.getLogger("tradeoff.router")
# The index of the first response the verifier accepts among one call's choices, or None.
Verifier = Callable[[list[str], "ChatRequest"], Awaitable[int | None]]


@dataclass
class ProxyState:
    settings: Settings
    targets: dict[str, Target]
    policies: PolicyBook
    request_log: RequestLog
    scrubber: Scrubber
    keys: KeyCheck
    cooldowns: Cooldowns
    metrics: Metrics = field(default_factory=Metrics)
    telemetry: Tracing | None = None  # traces over OTLP (router/telemetry.py); None: off
    # Created in the lifespan, inside the serving event loop (unset until then).
    adapter: Adapter = field(init=False, repr=False)
    loop: LiveLoop | None = None  # watches, shadowing, the violation fallback
    sessions: SessionTable | None = None  # None: sessions off (--session-ttl 0)
    policy_versions: dict[int, tuple[ServedPolicy, str]] = field(default_factory=dict)
    limits: Limits | None = None  # the limits of `serve --keys` (None: no limited keys)
    # What talks to the other replicas (router/replicas/shared.py), and the limits: started
    # and stopped in the lifespan, in this order (stopped in reverse), rendered on /metrics.
    replicated: list[Replicated] = field(default_factory=list)
    # Human review tiers of models.yaml (evals/reviewers.py): never called, answered by a draft.
    reviewers: dict[str, Reviewer] = field(default_factory=dict)
    _verifiers: dict[str, Verifier | None] = field(default_factory=dict)

    def model_names(self) -> list[str]:
        return [*self.policies.current, *self.targets, *self.reviewers]

    def verifier(self, name: str) -> Verifier | None:
        """A reference-free grader as a cascade's verifier, or None (plain fallback order).

        A plan names a verifier for cascades; only graders that judge a response on its own
        (`needs_reference = False`) can run at serve time, where there is no reference answer.
        """
        if name not in self._verifiers:
            self._verifiers[name] = self._build_verifier(name)
        return self._verifiers[name]

    @staticmethod
    def _build_verifier(name: str) -> Verifier | None:
        try:
            from tradeoff.evals.graders import Grader, Item, get_grader

            grader = get_grader(name)
        except (ImportError, TradeoffError) as exc:
            log.warning(
                "verifier %r unavailable (%s): its plans use plain fallback order", name, exc
            )
            return None
        if grader.needs_reference:
            log.warning("verifier %r needs a reference answer: plain fallback order", name)
            return None

        grouped = type(grader).agrade_group is not Grader.agrade_group

        async def verify(texts: list[str], chat: ChatRequest) -> int | None:
            item = Item(
                dataset="proxy",
                item_id="live",
                task=chat.task or "",
                prompt=chat.prompt,
                messages=chat.body.get("messages"),
            )
            try:
                if grouped:  # e.g. self-consistency: the choices are judged together
                    scores = await grader.agrade_group(texts, item)
                    return next((i for i, s in enumerate(scores) if s.passed), None)
                for i, text in enumerate(texts):  # one at a time: stop at the first accepted
                    if (await grader.agrade(text, item)).passed:
                        return i
                return None
            except Exception as exc:  # a verifier bug must not fail the request: accept
                log.warning("verifier %r failed (%s); accepting the answer", name, exc)
                return 0

        return verify
