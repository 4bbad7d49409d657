"""`tradeoff serve`."""

from __future__ import annotations

import click

from evals.cli_options import not_built


def register(group: click.Group) -> None:
    @group.command("serve")
    def serve() -> None:
        """Run the OpenAI-compatible proxy."""
        raise not_built("serve", "issue 5")
