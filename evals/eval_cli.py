"""`tradeoff eval`: run candidate models live over an eval set."""

from __future__ import annotations

import click

from evals.cli_options import not_built


def register(group: click.Group) -> None:
    @group.command("eval")
    def eval_() -> None:
        """Run models over a dataset, grade the answers, record outcomes."""
        raise not_built("eval", "issue 3")
