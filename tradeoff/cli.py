"""The `tradeoff` command: assembles the subcommands each package owns.

Errors a user can fix (`TradeoffError`, click usage errors) become one line on stderr and a
non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from tradeoff.evals.errors import TradeoffError
from tradeoff.evals.stopping import Terminated


@click.group(
    name="tradeoff",
    help="Measure LLMs, fit a routing policy to a stated requirement, serve it as an "
    "OpenAI-compatible proxy.",
)
@click.version_option(package_name="tradeoff", message="%(prog)s %(version)s")
def cli() -> None:
    pass


def assemble() -> click.Group:
    """The full command tree. Imported here so `import tradeoff` has no side effects."""
    from tradeoff.dashboard import cli as dashboard_cli
    from tradeoff.evals import cli as evals_cli
    from tradeoff.evals import eval_cli
    from tradeoff.evals.local import cli as local_cli
    from tradeoff.policies import cli as policies_cli
    from tradeoff.policies.loop import cli as loop_cli
    from tradeoff.router import cli as router_cli
    from tradeoff.router import status_cli
    from tradeoff.router.review import cli as review_cli

    modules = (
        evals_cli,
        eval_cli,
        policies_cli,
        loop_cli,
        router_cli,
        status_cli,
        review_cli,
        dashboard_cli,
        local_cli,
    )
    for module in modules:
        module.register(cli)
    return cli


def main(argv: list[str] | None = None) -> int:
    command = assemble()
    try:
        command.main(args=argv, prog_name="tradeoff", standalone_mode=False)
    except TradeoffError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        # `tradeoff` or a group with no arguments: the help is the answer.
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return 2
    except click.UsageError as exc:
        hint = f" Try '{exc.ctx.command_path} --help'." if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    except Terminated as exc:
        click.echo(str(exc), err=True)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
