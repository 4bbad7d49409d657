"""`tradeoff policies|rollback|refit|explore`: the loop from the command line (`tradeoff status`,
which also shows the proxy's client keys, is the router's: `router/status_cli.py`)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tradeoff.evals.cli_options import config_option, db_option, json_option
from tradeoff.evals.errors import UsageError


def _store(db: str | None) -> Any:
    from tradeoff.evals.store import open_store

    return open_store(db)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def register(group: click.Group) -> None:
    @group.command("policies")
    @click.argument("name", required=False)
    @db_option
    @json_option
    def policies(name: str | None, db: str | None, as_json: bool) -> None:
        """Stored policies: every version and its state (serving, candidate, rejected, ...)."""
        from tradeoff.policies.versions import history

        rows = history(_store(db), name)
        if name and not rows:
            raise UsageError(f"no stored policy {name!r}; fit one with `tradeoff fit --name`")
        if as_json:
            docs = [r.__dict__ | {"created_at": str(r.created_at)} for r in rows]
            click.echo(json.dumps(docs, indent=2, default=str))
            return
        if not rows:
            click.echo("no stored policies; `tradeoff fit` stores what it fits")
            return
        width = max(len(r.name) for r in rows)
        click.echo(
            f"{'name':{width}}  {'ver':>3}  {'state':11}  {'source':6}  {'family':10}  "
            f"{'promised kept':>13}  {'savings':>7}  created"
        )
        for r in rows:
            kept = r.promised.get("accuracy_vs_baseline")
            saved = r.promised.get("savings_vs_baseline")
            click.echo(
                f"{r.name:{width}}  {r.version:>3}  {r.state:11}  {r.source:6}  {r.family:10}  "
                f"{_pct(kept):>13}  {_pct(saved):>7}  {r.created_at:%Y-%m-%d %H:%M}"
            )

    @group.command("rollback")
    @click.argument("name")
    @click.option(
        "--to",
        "to",
        type=click.IntRange(min=1),
        default=None,
        help="The version to serve [default: the one that served before].",
    )
    @db_option
    def rollback(name: str, to: int | None, db: str | None) -> None:
        """Serve an earlier version of a stored policy again (proxies pick it up)."""
        from tradeoff.policies.loop.promote import rollback as roll

        old, new = roll(_store(db), name, to)
        click.echo(f"policy {name}: version {old} rolled back; version {new} serves again")

    @group.command("refit")
    @click.option("--policy", "name", required=True, help="A stored policy NAME.")
    @click.option(
        "--promote",
        "promote_it",
        is_flag=True,
        help="Serve the candidate if it passes the test on held-out traffic.",
    )
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option(
        "--trials",
        "n_trials",
        type=click.IntRange(1, 10000),
        default=20,
        show_default=True,
        help="Optuna trials per configuration search (as `tradeoff fit --trials`).",
    )
    @db_option
    @json_option
    def refit(
        name: str, promote_it: bool, seed: int, n_trials: int, db: str | None, as_json: bool
    ) -> None:
        """Fit a new version on the policy's dataset plus its graded traffic; promote it only
        if it passes the requirement's lower-bound test on traffic it was not fitted on."""
        from tradeoff.policies.loop.refit import refit_policy

        result = refit_policy(_store(db), name, promote_it=promote_it, seed=seed, n_trials=n_trials)
        if as_json:
            click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        else:
            data = result.data
            click.echo(
                f"refit of {name} (version {result.serving} serving): "
                f"{data.get('traffic_pairs', 0)} traffic pairs"
                + (f" since pair {data['since_pair']}" if data.get("since_pair") else "")
                + f" + {data.get('source_items', 0)} items of {data.get('source_dataset')}"
            )
            if result.fit:
                click.echo(f"  candidate version {result.version}: {result.fit['description']}")
            if result.promoted:
                click.echo(f"promoted: version {result.version} now serves; {result.reason}")
            elif result.verdict is not None and result.verdict.passed:
                click.echo(f"passed ({result.reason}); not promoted: run with --promote")
            else:
                click.echo(f"not promoted: {result.reason}; version {result.serving} keeps serving")
        if promote_it and not result.promoted:
            sys.exit(1)

    @group.command("explore")
    @click.argument("name")
    @click.option("--baseline", required=True, help="The model the app calls today.")
    @click.option(
        "--candidates",
        required=True,
        help="Comma-separated models (from models.yaml) that might take over its requests.",
    )
    @click.option(
        "--require",
        "requirement",
        required=True,
        help='What a cheaper policy must keep, e.g. "accuracy >= 95% of baseline".',
    )
    @config_option
    @db_option
    @json_option
    def explore(
        name: str,
        baseline: str,
        candidates: str,
        requirement: str,
        config: str | None,
        db: str | None,
        as_json: bool,
    ) -> None:
        """Start from the model the app calls today: store version 1 of policy NAME (the baseline
        alone) with candidates to explore. `tradeoff serve --policy NAME --shadow RATE` then asks
        the candidates in shadow, drops the ones that cannot help, and `tradeoff status` says what
        is proven; `tradeoff refit --policy NAME --promote` promotes what passes. Again on an
        explored NAME: adds candidates."""
        from tradeoff.evals.registry import load_registry
        from tradeoff.policies.loop.explore import explore as start

        names = [c.strip() for c in candidates.split(",") if c.strip()]
        registry = load_registry(config, required=config is not None)
        missing = [m for m in [baseline, *names] if len(registry) and m not in registry]
        if missing:
            raise UsageError(
                f"{', '.join(missing)} not in {registry.path}; add them to models.yaml or pass "
                "--config PATH"
            )
        found, new = start(_store(db), name, baseline, names, requirement)
        if as_json:
            doc = {
                "name": found.name,
                "version": found.version,
                "baseline": found.baseline,
                "candidates": list(found.candidates),
                "requirement": found.requirement,
                "created": new,
            }
            click.echo(json.dumps(doc, indent=2))
            return
        what = "stored version 1 of" if new else "now exploring"
        click.echo(
            f"{what} {name}: {found.baseline} serves; exploring {', '.join(found.candidates)} "
            f'against "{found.requirement}"'
        )
        click.echo(
            f"next: tradeoff serve --policy {name} --shadow 0.2 (and `tradeoff status {name}`)"
        )
