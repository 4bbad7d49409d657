"""The app factory: `create_app(settings)` returns the proxy as a Starlette ASGI app.

Loading the registry, the policies and the store happens here, so a wrong file fails before the
server listens (one line from the CLI). Clients, threads and pollers start in the lifespan and
stop there too: the request log replays what an earlier process left in the spool, and at a
SIGTERM/SIGINT uvicorn finishes in-flight requests, then the lifespan drains the request log
(for at most `log_drain_s`; what the store cannot take stays in the spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tradeoff.evals import estimate
from tradeoff.evals.registry import load_registry
from tradeoff.evals.reviewers import reviewers
from tradeoff.evals.store import Store, open_store, resolve_db
from tradeoff.evals.targets import build_targets
from tradeoff.evals.telemetry import tracing
from tradeoff.evals.upstream import Adapter
from tradeoff.router.body import json_reader
from tradeoff.router.boundary import ErrorBoundary
from tradeoff.router.endpoints import proxy_routes
from tradeoff.router.errors import ProxyError
from tradeoff.router.keys.auth import KeyCheck
from tradeoff.router.keys.keyfile import load_keys
from tradeoff.router.keys.limits import build_limits
from tradeoff.router.log.request_log import RequestLog
from tradeoff.router.log.spool import spool_dir
from tradeoff.router.loop.feedback import Feedback
from tradeoff.router.loop.live import build_loop
from tradeoff.router.metrics import family
from tradeoff.router.reload import PolicyBook
from tradeoff.router.replicas.shared import (
    Replicated,
    build_cooldowns,
    build_sessions,
    start_shared,
    stop_shared,
)
from tradeoff.router.review.drafts import check_drafts
from tradeoff.router.review.endpoints import Reviews
from tradeoff.router.scrub import Scrubber
from tradeoff.router.settings import Settings
from tradeoff.router.state import ProxyState

log = logging.getLogger("tradeoff.router")
# The log writer waits this long for a store another process holds, then retries on its own
# schedule (so a shutdown's drain deadline is never stuck inside one long wait).
LOG_STORE_WAIT_S = 1.0


def build_state(settings: Settings) -> ProxyState:
    """Read models.yaml, the policy files and the store; raise TradeoffError on any problem."""
    registry = load_registry(settings.config_path)
    targets = build_targets(registry)  # none for a human review tier: it is never called
    humans = {r.name: r for r in reviewers(registry)}
    check_drafts(humans, set(targets))
    store = open_store(settings.db_path)  # migrated, waiting as long as any command would
    book = PolicyBook(
        settings.policy_paths, set(targets) | set(humans), settings.stored_policies, store
    )
    book.load_all()
    secrets = [s for t in targets.values() for s in t.secrets]
    # The same store, with the log writer's own short wait for a lock.
    log_store = Store(resolve_db(settings.db_path), timeout_s=LOG_STORE_WAIT_S)
    request_log = RequestLog(
        log_store,
        spool_dir(settings.db_path),
        spool=settings.spool,
        flush_s=settings.log_flush_s,
        batch_rows=settings.log_batch_rows,
        drain_s=settings.log_drain_s,
    )
    key_book = load_keys(settings.keys_path) if settings.keys_path else None
    replicated: list[Replicated] = []
    state = ProxyState(
        settings=settings,
        targets=targets,
        policies=book,
        request_log=request_log,
        scrubber=Scrubber(secrets),
        keys=KeyCheck(settings.api_keys, settings.admin_keys, key_book),
        cooldowns=build_cooldowns(settings.cooldown_s, settings.db_path, replicated),
        sessions=build_sessions(settings.session_ttl_s, settings.db_path, replicated),
        replicated=replicated,
        reviewers=humans,
    )
    state.loop = build_loop(state, store)
    if key_book is not None:
        keys = list(key_book.keys.values())
        state.limits = build_limits(keys, settings.db_path, request_log, workers=settings.workers)
        if state.limits is not None:
            state.replicated.append(state.limits)
    return state


def _reload(state: ProxyState, only_changed: bool) -> None:
    """Reload policies and give new versions their watches (blocking: it may read the store)."""
    book = state.policies
    if only_changed and not book.changed():
        return
    book.reload(only_changed=only_changed)
    if state.loop is not None:
        state.loop.sync(book.current)


async def _poll_policies(state: ProxyState) -> None:
    while True:
        await asyncio.sleep(state.settings.reload_interval_s)
        try:
            await asyncio.to_thread(_reload, state, True)
        except Exception as exc:  # a store that stays locked: try again next time
            log.error("policy poll failed (%s); will retry", exc)


def _gauges(state: ProxyState, feedback: Feedback, reviews: Reviews) -> None:
    """The /metrics families read from the state's parts at each scrape."""
    state.metrics.gauge(
        "tradeoff_request_log_pending",
        "Rows taken in (spooled), not yet in the store.",
        lambda: float(state.request_log.pending),
    )
    state.metrics.gauge(
        "tradeoff_request_log_dead_letters",
        "Rows the store refused, set aside in the dead-letter file.",
        lambda: float(state.request_log.dead_letters.rows),
    )
    state.metrics.gauge(
        "tradeoff_policy_reload_errors",
        "Policy reloads that kept the old policy.",
        lambda: float(state.policies.reload_errors),
    )
    if state.loop is not None:
        state.metrics.collectors.append(state.loop.render)
    state.metrics.collectors.append(feedback.render)
    state.metrics.collectors.append(reviews.render)
    state.metrics.refreshers.append(reviews.refresh)
    telemetry = state.telemetry
    if telemetry is not None:
        spans = telemetry.queue
        state.metrics.collectors.append(
            lambda: [
                *family("tradeoff_otel_spans_exported_total", "counter",
                        "Trace spans the collector took.", [((), spans.exported)]),
                *family("tradeoff_otel_spans_dropped_total", "counter",
                        "Trace spans dropped: the export queue was full or the collector "
                        "did not take them.", [((), spans.dropped)]),
            ]
        )  # fmt: skip


def _lifespan(
    state: ProxyState, feedback: Feedback, reviews: Reviews
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """Start the clients, threads and pollers when the server starts; stop them after it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.adapter = Adapter()
        state.telemetry = tracing()  # per serving process: a worker exports its own spans
        state.request_log.start()
        threading.Thread(target=estimate.warm, name="tradeoff-tokenizer", daemon=True).start()
        _gauges(state, feedback, reviews)
        if state.loop is not None:
            await state.loop.start(lambda: state.policies.current)
        await start_shared(state)
        settings = state.settings
        polled = settings.policy_paths or settings.stored_policies
        poller = asyncio.ensure_future(_poll_policies(state)) if polled else None
        loop = asyncio.get_running_loop()
        hup = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP")
        reloads: set[asyncio.Future[None]] = set()

        def on_hup() -> None:
            reloading = asyncio.ensure_future(asyncio.to_thread(_reload, state, False))
            reloads.add(reloading)
            reloading.add_done_callback(reloads.discard)

        if hup:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            yield
        finally:
            if hup:
                loop.remove_signal_handler(signal.SIGHUP)
            if poller is not None:
                poller.cancel()
            await asyncio.gather(*reloads, return_exceptions=True)
            if state.loop is not None:
                await state.loop.stop()
            await stop_shared(state)
            await state.adapter.aclose()
            await asyncio.to_thread(state.request_log.close)
            if state.telemetry is not None:
                await asyncio.to_thread(state.telemetry.shutdown)

    return lifespan


def _served_paths(routes: list[BaseRoute]) -> str:
    """The routes' paths for the 404 message: "/a, /b and /c"."""
    paths = list(dict.fromkeys(r.path_format for r in routes if isinstance(r, Route)))
    return ", ".join(paths[:-1]) + f" and {paths[-1]}" if len(paths) > 1 else "".join(paths)


def _not_found(routes: list[BaseRoute]) -> Callable[[Request, Exception], Awaitable[Response]]:
    served = _served_paths(routes)

    async def not_found(request: Request, exc: Exception) -> Response:
        message = f"no route {request.url.path}; the proxy serves {served}"
        return ProxyError(404, message, code="not_found").response()

    return not_found


async def _wrong_method(request: Request, exc: Exception) -> Response:
    message = f"{request.method} is not allowed on {request.url.path}"
    return ProxyError(405, message, code="method_not_allowed").response()


def _middleware(settings: Settings) -> list[Middleware]:
    """CORS only when origins are named; inside it, the one error handler (so its answers carry
    CORS headers too)."""
    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
            )
        )
    return [*middleware, Middleware(ErrorBoundary)]


def create_app(settings: Settings, state: ProxyState | None = None) -> Starlette:
    """The proxy. `state` may be passed prebuilt (tests inspect it); else it is built here."""
    state = state or build_state(settings)
    read_json = json_reader(settings)
    feedback = Feedback(state, read_json)
    reviews = Reviews(state, read_json)
    routes: list[BaseRoute] = list(proxy_routes(state, read_json, feedback, reviews))
    app = Starlette(
        routes=routes,
        middleware=_middleware(settings),
        lifespan=_lifespan(state, feedback, reviews),
        exception_handlers={404: _not_found(routes), 405: _wrong_method},
    )
    app.state.proxy = state
    return app
