"""Starting the Streamlit server on the dashboard app (what `tradeoff dashboard` runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tradeoff.evals.stopping import stop_on_signals
from tradeoff.evals.store import DB_ENV


def app_path() -> Path:
    """The app's entry script, found through the package (works from an installed wheel)."""
    return Path(__file__).resolve().parent / "app.py"


LOCAL = "127.0.0.1"  # the dashboard has no login: this machine only, unless --host says so


def streamlit_command(port: int, address: str = LOCAL) -> list[str]:
    """`streamlit run` on the app, headless, with our settings as flags (no .streamlit/ needed);
    listening on `address` only (Streamlit's own default is every interface)."""
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # The app lives in site-packages when installed: nothing there to watch.
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
        "--server.address", address,
    ]  # fmt: skip
    return command


def dashboard_env(db: str | Path) -> dict[str, str]:
    return {**os.environ, DB_ENV: str(db)}


def run_streamlit(command: list[str], env: dict[str, str], stop_s: float = 10.0) -> int:
    """Run streamlit until it exits; return its status.

    Whatever stops this command first (Ctrl-C, SIGTERM, SIGHUP) stops streamlit too: it is
    terminated, then killed if it lingers past `stop_s` or on a second Ctrl-C, before the
    interruption goes on.
    """
    with stop_on_signals():
        process = subprocess.Popen(command, env=env)
        try:
            return process.wait()
        except BaseException:
            process.terminate()
            try:
                process.wait(timeout=stop_s)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                process.kill()
                process.wait()
            raise
