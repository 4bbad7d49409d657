"""Click options shared by every package's commands, and the not-built placeholder."""

from __future__ import annotations

import click

from tradeoff.evals.errors import NotBuiltError

db_option = click.option(
    "--db",
    envvar="TRADEOFF_DB",
    default=None,
    help="The store: a DuckDB file or a postgresql:// URL [default: "
    "$XDG_DATA_HOME/tradeoff/tradeoff.duckdb, i.e. ~/.local/share/...; env TRADEOFF_DB].",
)
config_option = click.option(
    "--config",
    envvar="TRADEOFF_CONFIG",
    default=None,
    help="Model registry [default: ./models.yaml; env TRADEOFF_CONFIG].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")


def not_built(command: str, issue: str) -> NotBuiltError:
    """The error a command raises until it is implemented (exit 2)."""
    return NotBuiltError(f"`tradeoff {command}` is not built yet ({issue})")
