"""`tradeoff eval`: run candidate models live over an eval set."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from tradeoff.evals.budget import BudgetExhaustedError
from tradeoff.evals.cli_options import config_option, db_option, json_option
from tradeoff.evals.errors import UsageError

if TYPE_CHECKING:
    from tradeoff.evals.runner import Runner
    from tradeoff.evals.store import Store


def _models(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise UsageError("--models needs at least one model name from models.yaml, e.g. a,b")
    if len(set(names)) != len(names):
        raise UsageError(f"--models lists a model twice: {value}")
    return names


def register(group: click.Group) -> None:
    @group.command("eval")
    @click.option("--dataset", required=True, help="Dataset name (its items in the store).")
    @click.option("--models", "models", required=True, help="Comma-separated models.yaml names.")
    @config_option
    @click.option(
        "--repeats",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Samples per item and model (3+ to measure consistency).",
    )
    @click.option(
        "--max-cost",
        type=click.FloatRange(min=0),
        default=None,
        help="Stop before this run's spend in USD could exceed this.",
    )
    @click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=16,
        show_default=True,
        help="Calls in flight at once (models.yaml max_concurrency/rpm also apply).",
    )
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=None,
        help="Only the first N items (by item_id).",
    )
    @click.option("--split", default=None, help="Only items of this split.")
    @click.option(
        "--grader",
        default=None,
        help="Grader for every item (name or module:function) instead of the items' own.",
    )
    @click.option(
        "--judge", default=None, help="models.yaml name of the judge for `judge` grading."
    )
    @click.option("--temperature", type=float, default=None, help="Sampling temperature.")
    @click.option(
        "--max-tokens",
        type=click.IntRange(min=1),
        default=None,
        help="Answer length limit (also makes --max-cost estimates exact).",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=120.0,
        show_default=True,
        help="Seconds per call before it counts as a timeout (then retried).",
    )
    @click.option(
        "--max-retries",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="Retries per call on 429/5xx/timeouts (Retry-After honoured).",
    )
    @click.option("--no-progress", is_flag=True, help="No progress line on stderr.")
    @click.option(
        "--adaptive",
        is_flag=True,
        help="Race the models in rounds and stop measuring those no policy meeting --require "
        "needs (evals/adaptive).",
    )
    @click.option(
        "--require", default=None, help='With --adaptive: e.g. "accuracy >= 95% of baseline".'
    )
    @click.option("--baseline", default=None, help="With --adaptive: the baseline model.")
    @click.option(
        "--batch-items",
        type=click.IntRange(min=1),
        default=None,
        help="With --adaptive: items per round [default: about 1/50 of the items, at least 10].",
    )
    @click.option(
        "--seed", type=int, default=0, show_default=True, help="With --adaptive: the item order."
    )
    @click.option(
        "--by-task",
        is_flag=True,
        help="With --adaptive: drop a dominated model only if dominated on every task.",
    )
    @db_option
    @json_option
    def eval_(
        dataset: str,
        models: str,
        config: str | None,
        repeats: int,
        max_cost: float | None,
        concurrency: int,
        limit: int | None,
        split: str | None,
        grader: str | None,
        judge: str | None,
        temperature: float | None,
        max_tokens: int | None,
        timeout: float,
        max_retries: int,
        no_progress: bool,
        adaptive: bool,
        require: str | None,
        baseline: str | None,
        batch_items: int | None,
        seed: int,
        by_task: bool,
        db: str | None,
        as_json: bool,
    ) -> None:
        """Run models over a dataset, grade the answers, record outcomes.

        Outcomes already recorded (same dataset, item, model, parameters and sample) are not
        called again, so rerunning an interrupted command resumes it. Exits 3 when --max-cost
        stopped the run early. With --adaptive, items not run on a dropped model are recorded
        as not measured (never as failures).
        """
        from tradeoff.evals.registry import load_registry
        from tradeoff.evals.rounds import render_rounds, render_samples
        from tradeoff.evals.runner import EvalSpec, run_eval
        from tradeoff.evals.store import open_store
        from tradeoff.evals.summary import render

        spec = EvalSpec(
            dataset=dataset,
            models=_models(models),
            repeats=repeats,
            max_cost_usd=max_cost,
            concurrency=concurrency,
            limit=limit,
            split=split,
            grader=grader,
            judge=judge,
            params={"temperature": temperature, "max_tokens": max_tokens},
            timeout_s=timeout,
            max_retries=max_retries,
            progress=not no_progress,
        )
        spec.params = {k: v for k, v in spec.params.items() if v is not None}
        if adaptive != (require is not None):
            raise UsageError("--adaptive and --require go together: pass both, or neither")
        if not adaptive and (baseline or batch_items or by_task):
            raise UsageError("--baseline, --batch-items and --by-task need --adaptive")
        registry = load_registry(config)
        store = open_store(db, create=False)  # an eval needs imported items
        if adaptive:
            from tradeoff.evals.adaptive.cli import run_adaptive_command

            assert require is not None
            run_adaptive_command(
                store, registry, spec, require, baseline, batch_items, seed, by_task, as_json
            )
            return

        def announce(runner: Runner) -> None:
            click.echo(
                f"{dataset}: {len(runner.items)} items x {len(spec.models)} models x {repeats} "
                f"samples; {runner.planned - len(runner.jobs)} already recorded, "
                f"{len(runner.jobs)} to call (run {runner.run_id}; store {store})",
                err=True,
            )

        report = run_eval(store, registry, spec, on_ready=announce)
        if as_json:
            click.echo(json.dumps(report.to_dict(), indent=2))
        else:
            click.echo(render(report.summary))
            if report.summary.get("refine"):
                click.echo(render_rounds(report.summary["refine"]))
            if report.summary.get("best_of_k"):
                click.echo(render_samples(report.summary["best_of_k"]))
            click.echo(
                f"run {report.run_id}: {report.status}; {report.recorded} new outcomes, "
                f"{report.skipped} already recorded, spend ${report.spend_usd:.4f}"
            )
        warn_failures(store, dataset, report.summary)
        if report.status == "budget_exhausted":
            raise BudgetExhaustedError(report.message)


def warn_failures(store: Store, dataset: str, summary: dict[str, list[dict[str, Any]]]) -> None:
    """One warning line per model whose every call failed (errors are outcomes, not a crash)."""
    for row in summary["models"]:
        if row["n"] and row["errors"] == row["n"]:
            click.echo(
                f"warning: every call to {row['model']} failed ({_first_error(store, dataset, row['model'])}); "
                "check its models.yaml entry, then rerun to retry the errors",
                err=True,
            )


def _first_error(store: Store, dataset: str, model: str) -> str:
    with store.connect(read_only=True) as con:
        row = con.execute(
            "SELECT error FROM outcomes WHERE dataset = ? AND model = ? AND error IS NOT NULL "
            "ORDER BY created_at LIMIT 1",
            [dataset, model],
        ).fetchone()
    return str(row[0])[:300] if row else "no error recorded"
