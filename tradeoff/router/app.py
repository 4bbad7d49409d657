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
import dataclasses
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tradeoff.evals import estimate
from tradeoff.evals.registry import load_registry
from tradeoff.evals.store import Store, open_store, resolve_db
from tradeoff.evals.targets import build_targets
from tradeoff.evals.upstream import Adapter
from tradeoff.router.call import CLIENT_CLOSED, Call
from tradeoff.router.errors import ProxyError
from tradeoff.router.keys.auth import KeyCheck
from tradeoff.router.keys.keyfile import load_keys
from tradeoff.router.keys.limits import build_limits
from tradeoff.router.log.request_log import RequestLog
from tradeoff.router.log.spool import spool_dir
from tradeoff.router.loop.feedback import Feedback
from tradeoff.router.loop.live import build_loop
from tradeoff.router.pipeline import handle
from tradeoff.router.protocols import (
    AnthropicProtocol,
    ChatProtocol,
    CompletionsProtocol,
    EmbeddingsProtocol,
    Protocol,
    ResponsesProtocol,
)
from tradeoff.router.protocols.count_tokens import count_tokens_endpoint
from tradeoff.router.reload import PolicyBook
from tradeoff.router.replicas.shared import (
    build_cooldowns,
    build_sessions,
    start_shared,
    stop_shared,
)
from tradeoff.router.request import unknown_model
from tradeoff.router.scrub import Scrubber
from tradeoff.router.settings import Settings
from tradeoff.router.sse import ClientGone
from tradeoff.router.state import ProxyState

log = logging.getLogger("tradeoff.router")
# The log writer waits this long for a store another process holds, then retries on its own
# schedule (so a shutdown's drain deadline is never stuck inside one long wait).
LOG_STORE_WAIT_S = 1.0


def build_state(settings: Settings) -> ProxyState:
    """Read models.yaml, the policy files and the store; raise TradeoffError on any problem."""
    registry = load_registry(settings.config_path)
    targets = build_targets(registry)
    store = open_store(settings.db_path)  # migrated, waiting as long as any command would
    book = PolicyBook(settings.policy_paths, set(targets), settings.stored_policies, store)
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
    named = key_book.secrets() if key_book else frozenset()
    state = ProxyState(
        settings=settings,
        targets=targets,
        policies=book,
        request_log=request_log,
        scrubber=Scrubber(secrets),
        keys=KeyCheck(settings.api_keys | named),
        cooldowns=build_cooldowns(settings.cooldown_s, settings.db_path),
        sessions=build_sessions(settings.session_ttl_s, settings.db_path),
    )
    state.loop = build_loop(state, store)
    if key_book is not None:
        state.key_book = key_book
        keys = list(key_book.keys.values())
        state.limits = build_limits(keys, settings.db_path, request_log, workers=settings.workers)
    return state


def _check_content_type(value: str | None) -> None:
    """JSON bodies only (`application/json`, or any `application/*+json`), else 415.

    A missing Content-Type is refused too: the official clients always send one, and a browser
    page can POST a body without one (or as text/plain or a form) to a proxy on localhost
    without any CORS preflight; requiring JSON keeps such pages out even with auth off.
    """
    media = (value or "").partition(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    got = f"got {value!r}" if value else "no Content-Type header was sent"
    raise ProxyError(
        415,
        f"the request body must be JSON sent with 'Content-Type: application/json' ({got}); "
        "with curl, add -H 'Content-Type: application/json'",
        code="unsupported_media_type",
    )


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length")
    too_big = ProxyError(
        413,
        f"the request body is larger than {limit} bytes; send a smaller request",
        code="request_too_large",
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_big
                chunks.append(chunk)
    except TimeoutError:
        raise ProxyError(
            408,
            f"the request body did not arrive within {timeout_s:g}s; send it in one go",
            code="request_timeout",
            headers={"connection": "close"},  # the rest of the body may still be on its way
        ) from None
    except ClientDisconnect:
        raise ClientGone("client disconnected mid-upload") from None
    return b"".join(chunks)


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


def create_app(settings: Settings, state: ProxyState | None = None) -> Starlette:
    """The proxy. `state` may be passed prebuilt (tests inspect it); else it is built here."""
    state = state or build_state(settings)

    async def read_json(request: Request) -> bytes:
        """A JSON body (415 for another type), bounded in size (413) and in time (408)."""
        _check_content_type(request.headers.get("content-type"))
        return await _read_body(request, settings.max_body_bytes, settings.body_timeout_s)

    feedback = Feedback(state, read_json)
    counting = count_tokens_endpoint(state, read_json)

    def serve(make: Callable[[], Protocol]) -> Callable[[Request], Any]:
        """The endpoint of one client protocol: every request ends in one `Call.finish()`."""

        async def endpoint(request: Request) -> Any:
            protocol = make()
            call = Call(state, protocol=protocol.name)
            try:
                protocol.check_key(state.keys, request.headers)
                call.key = state.key_book.identify(request.headers) if state.key_book else None
                raw = await read_json(request)
                response = await handle(state, call, protocol, raw, request)
            except ProxyError as exc:
                call.finish(exc.status, exc.message)
                return protocol.error_response(exc, call.headers())
            except ClientGone as exc:
                call.finish(CLIENT_CLOSED, str(exc) or "client disconnected before the answer")
                return Response(status_code=CLIENT_CLOSED)
            except Exception as exc:  # a bug: logged with its traceback, answered in the shape
                log.exception("request %s failed", call.request_id)
                error = ProxyError(
                    500,
                    f"internal error ({type(exc).__name__}) in the proxy; its log has the "
                    f"details under request id {call.request_id}",
                    type="server_error",
                    code="internal_error",
                )
                call.finish(500, error.message)
                return protocol.error_response(error, call.headers())
            except BaseException as exc:
                call.finish(500, f"internal error: {type(exc).__name__}")
                raise
            return response

        return endpoint

    chat_completions = serve(ChatProtocol)

    async def models(request: Request) -> Response:
        try:
            state.keys.check(request.headers.get("authorization"))
        except ProxyError as exc:
            return exc.response()
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "tradeoff-policy"}
            for name in state.policies.current
        ] + [
            {"id": name, "object": "model", "created": 0, "owned_by": "tradeoff"}
            for name in state.targets
        ]
        return JSONResponse({"object": "list", "data": data})

    async def model_card(request: Request) -> Response:
        """GET /v1/models/{id}: a policy's or a configured model's card, from the config."""
        try:
            state.keys.check(request.headers.get("authorization"))
        except ProxyError as exc:
            return exc.response()
        name = request.path_params["model"]
        card: dict[str, Any] = {"id": name, "object": "model", "created": 0}
        if name in state.policies.current:
            served = state.policies.current[name]
            card["owned_by"] = "tradeoff-policy"
            card["models"] = list(served.policy.models)
            card["baseline"] = served.baseline
        elif name in state.targets:
            target = state.targets[name]
            card["owned_by"] = "tradeoff"
            card["tier"] = target.entry.tier
            card["capabilities"] = dataclasses.asdict(target.capabilities)
        else:
            return unknown_model(name, state.model_names()).response()
        return JSONResponse(card)

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "pid": os.getpid(),  # which worker or replica answered (serve --workers)
                "policies": state.policies.describe(),
                "models": list(state.targets),
                "log_pending": state.request_log.pending,
                # key-limit settlements not yet in the shared store (0 without shared limits)
                "limits_pending": getattr(state.limits, "pending", 0),
                "spool": str(state.request_log.folder) if state.request_log.spool else None,
                "dead_letter": {
                    "path": str(state.request_log.dead_letters.path),
                    "rows": state.request_log.dead_letters.rows,
                },
            }
        )

    async def loop_status(request: Request) -> Response:
        try:
            state.keys.check(request.headers.get("authorization"))
        except ProxyError as exc:
            return exc.response()
        return JSONResponse(await asyncio.to_thread(state.loop.status))  # reads the store

    async def metrics(request: Request) -> Response:
        try:
            state.keys.check(request.headers.get("authorization"))
        except ProxyError as exc:
            return exc.response()
        return PlainTextResponse(
            state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.adapter = Adapter()
        state.request_log.start()
        threading.Thread(target=estimate.warm, name="tradeoff-tokenizer", daemon=True).start()
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
        state.metrics.collectors += [state.loop.render, feedback.render]
        await state.loop.start(lambda: state.policies.current)
        await start_shared(state)
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
            await state.loop.stop()
            await stop_shared(state)
            await state.adapter.aclose()
            await asyncio.to_thread(state.request_log.close)

    async def not_found(request: Request, exc: Exception) -> Response:
        message = (
            f"no route {request.url.path}; the proxy serves /v1/chat/completions, "
            "/v1/responses, /v1/messages, /v1/embeddings, /v1/completions, /v1/feedback, "
            "/v1/models, /health, /metrics and /tradeoff/status"
        )
        return ProxyError(404, message, code="not_found").response()

    async def wrong_method(request: Request, exc: Exception) -> Response:
        message = f"{request.method} is not allowed on {request.url.path}"
        return ProxyError(405, message, code="method_not_allowed").response()

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
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/responses", serve(ResponsesProtocol), methods=["POST"]),
            Route("/v1/messages", serve(AnthropicProtocol), methods=["POST"]),
            Route("/v1/messages/count_tokens", counting, methods=["POST"]),
            Route("/v1/embeddings", serve(EmbeddingsProtocol), methods=["POST"]),
            Route("/v1/completions", serve(CompletionsProtocol), methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model:path}", model_card, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/tradeoff/status", loop_status, methods=["GET"]),
            *feedback.routes(),
        ],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: wrong_method},
    )
    app.state.proxy = state
    return app
