"""The loop inside the proxy: a `Watch` per served policy, fed from the store's shadow pairs.

Hooks, each O(1) on the request path and unable to fail it:
- `on_route(call)` after routing: samples the request for shadowing (its answer is then kept);
- `on_finish(call, status)` when the request is logged: builds its shadow job;
- `after(call, response)`: hands a non-streaming job to the shadow runner as the response's
  background task, so it starts only once the client has the whole answer.
`serves_baseline(served)` is how `--on-violation baseline` reroutes a violated policy.

**One truth for every replica.** A graded pair goes to the store (policies/loop/traffic.py,
every `write_every_s`), and every `refresh_s` each watch reads the pairs stored since its last
read, every replica's, in the order the store assigned them. So every replica on one store, and
`tradeoff status`, feed their monitors the same pairs in the same order and agree on each
policy's state, and `--on-violation baseline` switches on every replica at the same pair. The
price is staleness: a pair counts `write_every_s + refresh_s` (3 s by default) after it was
graded, plus however long the store is unreachable. `/tradeoff/status` reads the store first,
so it is as fresh as the store.

`sync(current)` (in a thread: it reads the store) gives every newly served policy version its
watch, rebuilt from the store's pairs and requests of that version's epoch, so a restart or a
promotion picks up exactly where the store is. `--refit-every` is router/loop/refits.py.

**Exploring** (cold start): a served policy that `tradeoff explore` named candidates for also
asks them on sampled requests (router/loop/explore.py, `Exploring`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from tradeoff.evals.store import Store
from tradeoff.policies.loop.status import Watch, load_watch
from tradeoff.policies.loop.traffic import GradedPair, TrafficWriter
from tradeoff.policies.versions import event_time, now, record_alarm
from tradeoff.router.loop.explore import EXPLORE_EVERY, Exploring
from tradeoff.router.loop.refits import RefitSchedule
from tradeoff.router.loop.shadow import ShadowJob, ShadowResult, ShadowRunner, prompt_hash
from tradeoff.router.metrics import family
from tradeoff.router.reload import ServedPolicy
from tradeoff.router.settings import Settings
from tradeoff.router.telemetry import start_shadow

if TYPE_CHECKING:
    from tradeoff.router.call import Call

log = logging.getLogger("tradeoff.loop")
FIRST_SYNC_S = 2.0  # how long serving waits for the policies' first watches


class LiveLoop:
    """Watches, shadowing and the violation fallback of one proxy."""

    def __init__(self, settings: Settings, store: Store, shadow: ShadowRunner | None) -> None:
        self.settings, self.loop_settings = settings, settings.loop
        self.store = store
        self.shadow = shadow
        self.writer = TrafficWriter(store, flush_s=settings.loop.write_every_s)
        self.watches: dict[str, Watch] = {}
        self.violations: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()
        every = settings.loop.refit_every_s
        followed = [ref for ref in settings.stored_policies if "@" not in ref]
        self.refits = RefitSchedule(followed, every, settings.db_path) if every else None
        self._refresher: asyncio.Task[None] | None = None
        self._reading = threading.Lock()  # one reader of the store's pairs at a time
        self._syncing = threading.Lock()  # the first sync and a reload's never interleave
        self._alarmed: set[tuple[str, int, str]] = set()  # watches whose alarm was acted on
        self.exploring = Exploring(store, self._spawn)

    # -- the served policies' watches --------------------------------------------------------
    @staticmethod
    def _key(served: ServedPolicy) -> tuple[int, str | None]:
        return served.epoch, served.artifact.policy_id if served.artifact else None

    def sync(self, current: Mapping[str, ServedPolicy]) -> None:
        """Give each served policy version its watch (blocking: reads the store)."""
        with self._syncing:
            self._sync(current)

    def _sync(self, current: Mapping[str, ServedPolicy]) -> None:
        watches = {}
        for name, served in current.items():
            old = self.watches.get(name)
            if old is not None and (old.epoch, old.policy_id) == self._key(served):
                watches[name] = old
                continue
            if served.artifact is None:
                continue
            if served.epoch == 0 and self.shadow is not None:
                self._remember(served)
            since = self._since(served)
            watches[name] = load_watch(
                self.store, name, served.version, served.epoch, served.artifact, since
            )
            log.info("loop: watching %s (version %s)", name, served.version)
        self.watches = watches
        self.exploring.sync(current)

    def _sync_exploring(self, current: Mapping[str, ServedPolicy]) -> None:
        with self._syncing:  # never beside a sync of the watches
            self.exploring.sync(current)

    def _remember(self, served: ServedPolicy) -> None:
        """A file policy's artifact goes to the store, so `tradeoff status` can read it."""
        from tradeoff.policies.artifact import insert_artifact

        assert served.artifact is not None
        with self.store.transaction() as con:
            insert_artifact(con, replace(served.artifact, policy_version=None))

    def _since(self, served: ServedPolicy) -> Any:
        return event_time(self.store, served.name, served.epoch) if served.epoch else None

    def _watch(self, served: ServedPolicy | None) -> Watch | None:
        if served is None:
            return None
        watch = self.watches.get(served.name)
        if watch is None or (watch.epoch, watch.policy_id) != self._key(served):
            return None
        return watch

    def serves_baseline(self, served: ServedPolicy) -> bool:
        """`--on-violation baseline`: a violated policy's requests go to its baseline."""
        if self.loop_settings.on_violation != "baseline" or not served.baseline:
            return False
        watch = self._watch(served)
        return watch is not None and watch.state == "violated"

    # -- request hooks -----------------------------------------------------------------------
    def on_route(self, call: Call) -> None:
        route = call.route
        if self.shadow is None or route is None or route.served is None or route.by_baseline:
            return
        if route.review is not None:  # a person labels it (router/review): no shadow guess
            return
        if route.baseline not in self.shadow.targets or not self.shadow.sample():
            return
        call.keep_answer = True
        if call.chat is not None and call.chat.stream:
            call.answer_events = []

    def on_finish(self, call: Call, status: int) -> None:
        route = call.route
        if route is None or route.served is None or status != 200:
            return
        if not call.keep_answer or self.shadow is None:
            return
        answer: bytes | list[bytes] | None = call.answer
        if call.answer_events is not None:
            answer = call.answer_events
        if answer is None or call.trace.model is None or route.baseline is None:
            return
        assert call.chat is not None
        call.shadow_job = ShadowJob(
            request_id=call.request_id,
            policy=route.served.name,
            routed_model=call.trace.model,
            baseline=route.baseline,
            body=call.chat.body,
            prompt=call.chat.prompt,
            task=call.chat.task,
            answer=answer,
            routed_cost_usd=call.cost_usd,
            routed_tokens=(call.prompt_tokens, call.completion_tokens),
            routed_latency_ms=call.latency_ms,
            served=route.served,
            trace=start_shadow(call),
            explore=self.exploring.asked(route.served, call.trace.model),
        )
        if call.chat.stream:  # the stream has ended: the client has everything
            self.shadow.submit(call.shadow_job)

    def after(self, call: Call, response: Response) -> Response:
        """Start a non-streaming request's shadow job once its response is sent."""
        if self.shadow is not None and call.shadow_job is not None and not call.chat_stream:
            response.background = BackgroundTask(self._submit, call.shadow_job)
        return response

    async def _submit(self, job: ShadowJob) -> None:
        # A coroutine, so Starlette runs it on the event loop (a plain function would go to a
        # thread pool, and the shadow queue is the loop's).
        if self.shadow is not None:
            self.shadow.submit(job)

    # -- graded pairs ------------------------------------------------------------------------
    def record(self, result: ShadowResult) -> None:
        """One graded pair: to the store (in the background), which every watch (and every
        replica's race) reads."""
        job, served = result.job, result.job.served
        log_prompts = self.settings.log_prompts
        self.writer.record(
            GradedPair(
                request_id=job.request_id,
                policy=job.policy,
                version=served.version,
                epoch=served.epoch,
                policy_id=served.artifact.policy_id if served.artifact else None,
                graded_at=now(),
                grader=self.shadow.grader.name if self.shadow else "",
                routed_model=job.routed_model,
                baseline_model=job.baseline,
                routed_score=result.score.routed,
                baseline_score=result.score.baseline,
                is_free=result.free,
                routed_cost_usd=job.routed_cost_usd,
                baseline_cost_usd=result.baseline_cost_usd,
                shadow_cost_usd=result.spend_usd,
                task=job.task,
                prompt_sha256=prompt_hash(job.prompt),
                prompt=job.prompt if log_prompts else None,
                routed_answer=result.routed_text if log_prompts else None,
                baseline_answer=result.baseline_text if log_prompts else None,
                routed_latency_ms=job.routed_latency_ms,
                baseline_latency_ms=result.baseline_latency_ms,
                routed_tokens=job.routed_tokens,
                baseline_tokens=result.baseline_tokens,
                explored=tuple(
                    a if log_prompts else replace(a, text=None) for a in result.explored
                ),
                reference_score=result.reference,
            )
        )
        self.exploring.record(result)  # this proxy's race sees its answers at once

    def refresh(self) -> None:
        """Read every watch's new pairs from the store (blocking)."""
        with self._reading:
            for watch in list(self.watches.values()):
                watch.refresh(self.store)
            self.exploring.refresh()

    def _act_on_alarms(self) -> None:
        """Act once on each watch found violated (by whichever read found it)."""
        for watch in list(self.watches.values()):
            key = (watch.name, watch.epoch, watch.policy_id)
            if watch.state == "violated" and key not in self._alarmed:
                self._alarmed.add(key)
                self._violated(watch)

    async def _refresh_forever(
        self, current: Callable[[], Mapping[str, ServedPolicy]], first: asyncio.Future[None]
    ) -> None:
        synced, failing, reads = False, False, 0
        while True:
            try:
                if not synced:
                    if first.done() and first.exception() is not None:  # that try failed
                        first = asyncio.ensure_future(asyncio.to_thread(self.sync, current()))
                    await first
                    synced = True
                await asyncio.sleep(self.loop_settings.refresh_s)
                if reads % EXPLORE_EVERY == 0:  # an exploration added or changed?
                    await asyncio.to_thread(self._sync_exploring, current())
                reads += 1
                await asyncio.to_thread(self.refresh)
                self._act_on_alarms()
                failing = False
            except Exception as exc:  # the store is away, or a bug: keep watching
                if not failing:
                    log.error("loop: reading the monitors' pairs failed (%s); will retry", exc)
                failing = True
                if not synced:
                    await asyncio.sleep(self.loop_settings.refresh_s)

    def _violated(self, watch: Watch) -> None:
        reading = watch.monitor.reading()
        self.violations[watch.name] += 1
        action = (
            f"serving its baseline {watch.artifact.baseline} until a new version is promoted"
            if self.loop_settings.on_violation == "baseline"
            else "still serving it (--on-violation baseline would serve the baseline)"
        )
        log.warning(
            "policy %s version %s violates %r: kept accuracy %.3f (upper bound %s) over the %d "
            "pairs since pair %s; %s",
            watch.name,
            watch.version,
            watch.artifact.requirement,
            reading.kept_accuracy or 0.0,
            reading.upper,
            reading.window_pairs,
            reading.change_at,
            action,
        )
        if watch.version is not None and watch.epoch:
            detail = {
                "alarm_at_pair": reading.alarm_at,
                "since_pair": reading.change_at,
                "kept_accuracy": reading.kept_accuracy,
                "upper": reading.upper,
            }
            self._spawn(asyncio.to_thread(self._record_event, watch, detail))

    def _record_event(self, watch: Watch, detail: dict[str, Any]) -> None:
        """Record the alarm once, whichever replica sees it first (they all do)."""
        assert watch.version is not None
        try:
            record_alarm(self.store, watch.name, watch.version, watch.epoch, detail)
        except Exception as exc:  # another replica appended at the same moment: it is recorded
            log.info("loop: the alarm of %s was recorded elsewhere (%s)", watch.name, exc)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- status and metrics ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The status JSON, as fresh as the store (blocking: call it in a thread)."""
        self.refresh()
        watches = [self.watches[n] for n in sorted(self.watches)]
        for watch in watches:
            watch.count_requests(self.store)
        entries = [w.entry() for w in watches]
        for entry in entries:
            explored = self.exploring.entry(entry["name"])
            if explored is not None:
                entry["explore"] = explored
        return {"policies": entries}

    def render(self) -> list[str]:
        states, kept = [], []
        for name, watch in sorted(self.watches.items()):
            for state in ("collecting", "ok", "violated"):
                states.append(((("policy", name), ("state", state)), int(watch.state == state)))
            reading = watch.monitor.reading()
            for bound, value in (
                ("point", reading.kept_accuracy),
                ("lower", reading.lower),
                ("upper", reading.upper),
            ):
                if value is not None:
                    kept.append(((("policy", name), ("bound", bound)), value))
        violations = [((("policy", n),), v) for n, v in sorted(self.violations.items())]
        return [
            *family("tradeoff_policy_state", "gauge",
                    "1 for each served policy's live state.", states),
            *family("tradeoff_policy_kept_accuracy", "gauge", "Live kept share of the "
                    "baseline's accuracy (point, 95% lower and upper bounds).", kept),
            *family("tradeoff_policy_violations_total", "counter",
                    "Alarms of the live monitor.", violations),
            *(self.shadow.render() if self.shadow else []),
        ]  # fmt: skip

    # -- life cycle --------------------------------------------------------------------------
    async def start(self, current: Callable[[], Mapping[str, ServedPolicy]]) -> None:
        """Start the loop's work; `current()` gives the served policies when their watches are
        first built (in the background, retried while the store is unavailable)."""
        self.writer.start()
        if self.shadow is not None:
            self.shadow.start()
        # The first watches are built before serving when the store answers at once; a store
        # locked or down at start must not keep the proxy from answering (its rows wait in the
        # spool), so after FIRST_SYNC_S they are built in the background, retried until done.
        first = asyncio.ensure_future(asyncio.to_thread(self.sync, current()))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(first), FIRST_SYNC_S)
        if not first.done():
            log.warning("loop: the store is busy; the policies' watches load in the background")
        self._refresher = asyncio.ensure_future(self._refresh_forever(current, first))
        if self.refits is not None:
            self.refits.start()

    async def stop(self) -> None:
        if self.refits is not None:
            await self.refits.stop()
        if self.shadow is not None:
            await self.shadow.stop()
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.writer.close)


def build_loop(state: Any, store: Store) -> LiveLoop:
    """The proxy's loop; a bad `--shadow-grader` is a one-line UsageError before serving."""
    from tradeoff.evals.errors import UsageError
    from tradeoff.policies.loop.grading import build_pair_grader
    from tradeoff.router.loop.shadow import answer_text

    settings = state.settings
    options = settings.loop
    loop = LiveLoop(settings, store, None)
    if not options.shadowing:
        return loop
    judge = None
    if options.shadow_grader.startswith("judge:"):
        name = options.shadow_grader.split(":", 1)[1]
        if name not in state.targets:
            raise UsageError(
                f"--shadow-grader {options.shadow_grader}: model {name!r} is not in models.yaml; "
                "add it or pick another judge"
            )
        judge = state.targets[name]

    async def ask(model: str, messages: list[dict[str, Any]]) -> tuple[str, float]:
        target = state.targets[model]
        body = {"messages": messages, "temperature": 0}
        reply = await state.adapter.complete(target, body, options.shadow_timeout_s)
        cost = target.cost(reply.prompt_tokens, reply.completion_tokens)
        return answer_text(reply.content) or "", cost or 0.0

    grader = build_pair_grader(options.shadow_grader, ask)
    loop.shadow = ShadowRunner(
        options, grader, state.targets, lambda: state.adapter, loop.record, judge
    )
    loop.exploring.shadow = loop.shadow
    loop.shadow.candidates = loop.exploring
    return loop
