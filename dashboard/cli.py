"""`tradeoff dashboard`."""

from __future__ import annotations

import click

from evals.cli_options import not_built


def register(group: click.Group) -> None:
    @group.command("dashboard")
    def dashboard() -> None:
        """Open the Streamlit dashboard on the store."""
        raise not_built("dashboard", "issue 6")
