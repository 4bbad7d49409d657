"""`tradeoff local serve|attach`."""

from __future__ import annotations

import click

from evals.cli_options import not_built


@click.group("local", no_args_is_help=True)
def local() -> None:
    """Serve or attach local vLLM models."""


@local.command("serve")
def serve() -> None:
    """Start a vLLM server for MODEL and register it in models.yaml."""
    raise not_built("local serve", "issue 7")


@local.command("attach")
def attach() -> None:
    """Register an already running vLLM server."""
    raise not_built("local attach", "issue 7")


def register(group: click.Group) -> None:
    group.add_command(local)
