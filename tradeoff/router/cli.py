"""`tradeoff serve`: run the OpenAI-compatible proxy."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import click

from tradeoff.evals.cli_options import config_option, db_option
from tradeoff.evals.errors import UsageError
from tradeoff.evals.ports import http_url

KEEP_ALIVE_S = 30


def register(group: click.Group) -> None:
    @group.command("serve")
    @click.option(
        "--policy",
        "policies",
        multiple=True,
        help="A policy to serve as a virtual model (repeatable): a policy file, a stored NAME "
        "(follows its serving version: promotions and rollbacks are picked up) or NAME@VERSION.",
    )
    @config_option
    @db_option
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=4000, show_default=True, type=int, help="0 picks a free port.")
    @click.option(
        "--api-key",
        "api_keys",
        multiple=True,
        help="Accepted client key (repeatable) [env TRADEOFF_API_KEYS, comma-separated].",
    )
    @click.option(
        "--api-key-file",
        type=click.Path(path_type=Path),
        help="File of accepted client keys, one per line.",
    )
    @click.option(
        "--admin-key",
        "admin_keys",
        multiple=True,
        help="Admin key (repeatable) [env TRADEOFF_ADMIN_KEYS, comma-separated]: also reads "
        "/metrics and /tradeoff/status and rates any request. Client keys get 403 there (with "
        "client keys but no admin key, nobody reads them) and rate only their own requests.",
    )
    @click.option("--log-prompts", is_flag=True, help="Store prompt text in the request log.")
    @click.option(
        "--timeout",
        "timeout_s",
        default=120.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds a request may take in total, streaming included.",
    )
    @click.option(
        "--max-body-bytes", default=1 << 20, show_default=True, type=click.IntRange(min=1)
    )
    @click.option(
        "--body-timeout",
        "body_timeout_s",
        default=30.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds a client may take to send its request body (then 408).",
    )
    @click.option(
        "--no-spool",
        is_flag=True,
        hidden=True,  # benchmarks only: rows wait in memory, and a crash loses them
        help="Keep request-log rows in memory only until written (loses them on a crash).",
    )
    @click.option(
        "--cors-origin",
        "cors_origins",
        multiple=True,
        help="Allow browser calls from this origin (repeatable; default: CORS off).",
    )
    @click.option(
        "--session-ttl",
        "session_ttl_s",
        default=3600.0,
        show_default=True,
        type=click.FloatRange(min=0),
        help="Seconds a conversation keeps its model after its last turn (0: no sessions).",
    )
    @click.option(
        "--shadow",
        "shadow_rate",
        default=0.0,
        type=click.FloatRange(0, 1),
        help="Share of policy-routed requests re-sent to the policy's baseline after the "
        "client has its answer, and graded as a pair (0: off); an explored policy's open "
        "candidates (`tradeoff explore`) are asked too.",
    )
    @click.option(
        "--shadow-grader",
        default="agreement",
        show_default=True,
        help="agreement (normalised match with the baseline's answer), judge:MODEL (pairwise, "
        "both orders), or a grader name (reference-free ones score both answers).",
    )
    @click.option(
        "--shadow-budget",
        "shadow_budget_usd",
        default=None,
        type=click.FloatRange(min=0),
        help="Stop shadowing once this run has spent this many USD on it [default: no limit].",
    )
    @click.option(
        "--on-violation",
        type=click.Choice(["serve", "baseline"]),
        default="serve",
        show_default=True,
        help="baseline: serve a policy's traffic from its baseline while its live monitor says "
        "violated (until a new version is promoted).",
    )
    @click.option(
        "--refit-every",
        "refit_every",
        default=None,
        help="Run `tradeoff refit --promote` for each stored policy served by name on this "
        "schedule, e.g. 30m, 6h, 1d.",
    )
    @click.option(
        "--keys",
        "keys_path",
        type=click.Path(path_type=Path),
        default=None,
        help="keys.yaml: named client keys (each also accepted as an API key) with per-key "
        "rpm and budget_usd per budget_period, enforced across every replica on the store.",
    )
    @click.option(
        "--drain-timeout",
        "drain_timeout_s",
        default=30.0,
        show_default=True,
        type=click.FloatRange(min=0),
        help="Seconds in-flight requests get to finish after SIGTERM/SIGINT; streams still "
        "running then end with an error event and are logged as cut.",
    )
    @click.option(
        "--workers",
        default=1,
        show_default=True,
        type=click.IntRange(1, 64),
        help="Proxy processes on this host sharing the port (each with its own spool); a "
        "supervisor forwards signals and restarts a worker that dies.",
    )
    @click.option(
        "--strict-translation",
        is_flag=True,
        help="Refuse (400) a Messages or Responses request offering built-in tools (web_search, "
        "namespace, server tools) to a model that cannot take its API as is, instead of "
        "removing them from what that model sees.",
    )
    def serve(
        policies: tuple[str, ...],
        config: str | None,
        db: str | None,
        host: str,
        port: int,
        api_keys: tuple[str, ...],
        api_key_file: Path | None,
        admin_keys: tuple[str, ...],
        log_prompts: bool,
        timeout_s: float,
        max_body_bytes: int,
        body_timeout_s: float,
        no_spool: bool,
        cors_origins: tuple[str, ...],
        session_ttl_s: float,
        shadow_rate: float,
        shadow_grader: str,
        shadow_budget_usd: float | None,
        on_violation: str,
        refit_every: str | None,
        keys_path: Path | None,
        drain_timeout_s: float,
        workers: int,
        strict_translation: bool,
    ) -> None:
        """Run the proxy: clients change only base_url and the key.

        Speaks OpenAI's chat completions, Responses, embeddings and completions APIs and
        Anthropic's Messages API. `model` in a request names a policy (routed; the turns of
        one conversation stay on one model) or a configured model (passed through).
        SIGHUP or an edited policy file reloads the policies. Every request's log row is on
        disk (a spool beside the store) before its answer completes; SIGTERM drains it into the
        store, and rows the store cannot take (locked, down) are written at the next start.
        """
        import uvicorn

        from tradeoff.evals.store import Store, resolve_db
        from tradeoff.router.app import create_app
        from tradeoff.router.settings import (
            LoopSettings,
            Settings,
            load_admin_keys,
            load_api_keys,
        )

        files, stored = split_policies(policies)
        if on_violation == "baseline" and not shadow_rate:
            raise UsageError("--on-violation baseline needs --shadow RATE (the pairs it watches)")
        refit_s = parse_duration(refit_every) if refit_every else None
        if refit_s and not any("@" not in ref for ref in stored):
            raise UsageError(
                "--refit-every refits stored policies served by name; pass --policy NAME"
            )
        settings = Settings(
            policy_paths=files,
            stored_policies=stored,
            loop=LoopSettings(
                shadow_rate=shadow_rate,
                shadow_grader=shadow_grader,
                shadow_budget_usd=shadow_budget_usd,
                on_violation=on_violation,
                refit_every_s=refit_s,
            ),
            config_path=Path(config) if config else None,
            db_path=db,
            api_keys=load_api_keys(api_keys, api_key_file),
            admin_keys=load_admin_keys(admin_keys),
            log_prompts=log_prompts,
            timeout_s=timeout_s,
            max_body_bytes=max_body_bytes,
            body_timeout_s=body_timeout_s,
            spool=not no_spool,
            cors_origins=cors_origins,
            session_ttl_s=session_ttl_s,
            keys_path=keys_path,
            drain_timeout_s=drain_timeout_s,
            workers=workers,
            strict_translation=strict_translation,
        )
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        if workers > 1:
            from tradeoff.router.app import build_state

            build_state(settings)  # every file and the store checked once, before any worker
            app = None
        else:
            app = create_app(settings)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say TCP, and
        # without it every response waits out the client's delayed ACK (~40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
            ) from None
        # Listen before announcing the port: a client may connect at once (it waits in the
        # backlog until uvicorn accepts, instead of being refused).
        sock.listen(2048)
        bound = sock.getsockname()[1]
        auth = "on" if settings.api_keys or settings.admin_keys or keys_path else "off"
        many = f"; {workers} workers" if workers > 1 else ""
        click.echo(
            f"tradeoff serve: listening on {http_url(host, bound)}/v1 (auth {auth}; store "
            f"{Store(resolve_db(db))}{many})",
            err=True,
        )
        options = {
            "log_level": "warning",
            "access_log": False,
            "timeout_graceful_shutdown": settings.drain_timeout_s,
            # Longer than clients' own idle expiry (httpx: 5 s), so a client never reuses a
            # connection at the instant the server closes it (a spurious connection error).
            "timeout_keep_alive": KEEP_ALIVE_S,
        }
        if app is None:
            from tradeoff.router.replicas.workers import supervise

            code = supervise(settings, options, sock)
            if code:
                raise click.exceptions.Exit(code)
            return
        uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])  # type: ignore[arg-type]


def split_policies(values: tuple[str, ...]) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """--policy values: existing files (and anything that looks like a path) vs stored names."""
    from tradeoff.policies.versions import parse_ref

    files, stored = [], []
    for value in values:
        path = Path(value)
        if path.is_file() or parse_ref(value) is None or path.suffix == ".json":
            files.append(path)
        else:
            stored.append(value)
    return tuple(files), tuple(stored)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `6h`, `1d` or plain seconds."""
    value, unit = text.strip().lower(), "s"
    if value and value[-1] in _UNITS:
        value, unit = value[:-1], value[-1]
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise UsageError(f"--refit-every {text!r}: give a duration like 30m, 6h or 1d")
    return seconds
