"""`tradeoff eval --adaptive`: announce, race, print what was saved and why."""

from __future__ import annotations

import json

import click

from tradeoff.evals.adaptive.race import Race
from tradeoff.evals.adaptive.run import AdaptiveReport, AdaptiveSpec, run_adaptive
from tradeoff.evals.budget import BudgetExhaustedError
from tradeoff.evals.eval_cli import warn_failures
from tradeoff.evals.registry import Registry
from tradeoff.evals.runner import EvalSpec, Runner
from tradeoff.evals.store import Store
from tradeoff.evals.summary import render


def run_adaptive_command(
    store: Store,
    registry: Registry,
    spec: EvalSpec,
    requirement: str,
    baseline: str | None,
    batch_items: int | None,
    seed: int,
    by_task: bool,
    as_json: bool,
) -> None:
    adaptive = AdaptiveSpec(spec, requirement, baseline, batch_items, seed, by_task)

    def announce(runner: Runner, race: Race) -> None:
        click.echo(
            f"{spec.dataset}: racing {len(race.models)} models over {len(race.item_ids)} items x "
            f'{spec.repeats} samples for "{requirement}"; {len(runner.done)} outcomes already '
            f"recorded, at most {len(runner.jobs)} to call (run {runner.run_id})",
            err=True,
        )

    report = run_adaptive(store, registry, adaptive, on_ready=announce)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render(report.eval.summary))
        click.echo(describe(report))
    warn_failures(store, spec.dataset, report.eval.summary)
    if report.eval.status == "budget_exhausted":
        raise BudgetExhaustedError(report.eval.message)


def describe(report: AdaptiveReport) -> str:
    """What the race spent, against measuring everything, and why each drop happened."""
    share = report.calls / report.calls_exhaustive if report.calls_exhaustive else 1.0
    lines = [
        f"run {report.eval.run_id}: {report.eval.status} ({report.stop_reason}) after "
        f"{report.rounds} rounds; {report.eval.recorded} new outcomes, spend "
        f"${report.eval.spend_usd:.4f}",
        f"adaptive: {report.calls} of {report.calls_exhaustive} calls ({share:.0%}), "
        f"${report.cost_usd:.4f} of an estimated ${report.cost_exhaustive_usd:.4f} exhaustive",
    ]
    for drop in report.dropped:
        lines.append(f"dropped {drop.model} after {drop.after_items} items: {drop.reason}")
    for row in report.candidates:
        if row["not_measured_items"]:
            lines.append(
                f"{row['model']}: {row['not_measured_items']} items not measured (not failures)"
            )
    return "\n".join(lines)
