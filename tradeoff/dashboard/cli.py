"""`tradeoff dashboard`: run the Streamlit app on the store."""

from __future__ import annotations

import click

from tradeoff.dashboard.launch import LOCAL, dashboard_env, run_streamlit, streamlit_command
from tradeoff.evals.cli_options import db_option
from tradeoff.evals.errors import UsageError
from tradeoff.evals.ports import http_url, port_is_free
from tradeoff.evals.store import open_store, resolve_db


def register(group: click.Group) -> None:
    @group.command("dashboard")
    @click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
    @click.option(
        "--host",
        "--address",
        "host",
        default=LOCAL,
        show_default=True,
        help="Interface to listen on. The dashboard has no login: only 0.0.0.0 (all "
        "interfaces) or another host's address lets other machines read the store.",
    )
    @db_option
    def dashboard(port: int, host: str, db: str | None) -> None:
        """Open the Streamlit dashboard on the store (Ctrl-C stops it)."""
        target = resolve_db(db)
        if not isinstance(target, str):
            target = target.resolve()
        store = open_store(target, create=False)  # the dashboard reads: it never creates one
        if not port_is_free(host, port):
            raise UsageError(f"port {port} is in use; pick another with --port")
        click.echo(
            f"tradeoff dashboard: listening on {http_url(host, port)} (store: {store}); "
            "Ctrl-C stops"
        )
        code = run_streamlit(streamlit_command(port, host), dashboard_env(target))
        if code != 0:
            raise click.ClickException(f"streamlit exited with status {code}")
