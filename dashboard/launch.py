"""Starting the Streamlit server on the dashboard app (what `tradeoff dashboard` runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from evals.store import DB_ENV


def app_path() -> Path:
    """The app's entry script, found through the package (works from an installed wheel)."""
    return Path(__file__).resolve().parent / "app.py"


def streamlit_command(port: int, address: str | None = None) -> list[str]:
    """`streamlit run` on the app, headless, with our settings as flags (no .streamlit/ needed)."""
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # The app lives in site-packages when installed: nothing there to watch.
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    if address:
        command += ["--server.address", address]
    return command


def dashboard_env(db: str | Path) -> dict[str, str]:
    return {**os.environ, DB_ENV: str(db)}
