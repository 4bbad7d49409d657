"""`tradeoff dashboard`: run the Streamlit app on the store."""

from __future__ import annotations

import socket
import subprocess

import click

from dashboard.launch import dashboard_env, streamlit_command
from evals.cli_options import db_option
from evals.errors import UsageError
from evals.store import resolve_db_path


def _port_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def register(group: click.Group) -> None:
    @group.command("dashboard")
    @click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
    @click.option(
        "--address", default=None, help="Interface to listen on [default: Streamlit's, all]."
    )
    @db_option
    def dashboard(port: int, address: str | None, db: str | None) -> None:
        """Open the Streamlit dashboard on the store (Ctrl-C stops it)."""
        path = resolve_db_path(db).resolve()
        if not path.parent.is_dir():
            raise UsageError(f"--db {path}: folder {path.parent} does not exist")
        if not _port_free(address or "0.0.0.0", port):
            raise UsageError(f"port {port} is in use; pick another with --port")
        click.echo(f"tradeoff dashboard on http://localhost:{port} (store: {path}); Ctrl-C stops")
        process = subprocess.Popen(streamlit_command(port, address), env=dashboard_env(path))
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.terminate()
            process.wait(timeout=10)
            raise
        if code != 0:
            raise click.ClickException(f"streamlit exited with status {code}")
