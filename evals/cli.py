"""`tradeoff import`, `tradeoff models`, `tradeoff datasets`."""

from __future__ import annotations

import click

from evals.cli_options import not_built


def register(group: click.Group) -> None:
    @group.command("import")
    def import_() -> None:
        """Import outcomes or items from a file into the store."""
        raise not_built("import", "issue 2")

    @group.command("models")
    def models() -> None:
        """List the models the store and models.yaml know, with counts and prices."""
        raise not_built("models", "issue 2")

    @group.command("datasets")
    def datasets() -> None:
        """List the datasets in the store with item and outcome counts."""
        raise not_built("datasets", "issue 2")
