"""`tradeoff fit|frontier|replay|route|demo`."""

from __future__ import annotations

import click

from evals.cli_options import not_built


def register(group: click.Group) -> None:
    @group.command("fit")
    def fit() -> None:
        """Fit a routing policy that meets a stated requirement."""
        raise not_built("fit", "issue 4")

    @group.command("frontier")
    def frontier() -> None:
        """The Pareto set of cost vs accuracy."""
        raise not_built("frontier", "issue 4")

    @group.command("replay")
    def replay() -> None:
        """A policy's metrics on recorded outcomes."""
        raise not_built("replay", "issue 4")

    @group.command("route")
    def route() -> None:
        """The routing decision for each prompt of a file."""
        raise not_built("route", "issue 4")

    @group.command("demo")
    def demo() -> None:
        """Import the bundled data, fit a policy, print the answer."""
        raise not_built("demo", "issue 4")
