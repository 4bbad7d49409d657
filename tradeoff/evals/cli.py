"""`tradeoff import`, `tradeoff models`, `tradeoff datasets`."""

from __future__ import annotations

import json
from typing import Any

import click

from tradeoff.evals.cli_options import config_option, db_option, json_option
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.store import Store, open_store

MODELS_IN_STORE = """
SELECT name, tier, source, input_cost_per_token, output_cost_per_token, gpu_hourly_usd,
       CAST(calibration AS VARCHAR) AS calibration
FROM models ORDER BY name
"""

DATASETS_IN_STORE = """
WITH i AS (
    SELECT dataset, count(*) AS items, count(DISTINCT task) AS tasks FROM items GROUP BY dataset
), o AS (
    SELECT dataset, count(*) AS outcomes, count(DISTINCT model) AS models
    FROM outcomes GROUP BY dataset
)
SELECT d.name AS dataset, coalesce(i.items, 0) AS items, coalesce(o.outcomes, 0) AS outcomes,
       coalesce(o.models, 0) AS models, coalesce(i.tasks, 0) AS tasks, d.license
FROM datasets d LEFT JOIN i ON i.dataset = d.name LEFT JOIN o ON o.dataset = d.name
ORDER BY d.name
"""

SPLITS_IN_STORE = """
SELECT dataset, coalesce(split, '(none)') AS split, count(*) FROM items
GROUP BY dataset, coalesce(split, '(none)') ORDER BY 1, 2
"""


def register(group: click.Group) -> None:
    @group.command("import")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option("--dataset", required=True, help="Dataset name to import into.")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["auto", "long", "routerbench", "items"]),
        default="auto",
        show_default=True,
        help="long: one row per outcome (CSV/JSONL/Parquet); routerbench: RouterBench's wide "
        "CSV; items: eval items without outcomes (JSONL); auto: told from the columns (ids "
        "and prompts without model or score: items; sample_id and eval_name: routerbench; "
        "else long).",
    )
    @click.option("--split", default=None, help="Split for rows that do not name one.")
    @db_option
    @json_option
    def import_(
        path: str, dataset: str, fmt: str, split: str | None, db: str | None, as_json: bool
    ) -> None:
        """Import outcomes or items from a file into the store (one transaction)."""
        from tradeoff.evals.importers import import_file

        store = open_store(db)
        summary = import_file(store, path, dataset, fmt=fmt, split=split)
        print_warnings(summary.warnings)
        if as_json:
            click.echo(json.dumps(summary.to_dict(), indent=2))
            return
        click.echo(
            f"imported {summary.path} into dataset {summary.dataset!r} ({summary.format}) "
            f"in {summary.seconds:.2f}s"
        )
        click.echo(f"  items     {summary.items} ({summary.items_inserted} new)")
        click.echo(
            f"  outcomes  {summary.outcomes_inserted} inserted, {summary.outcomes_updated} "
            f"updated, {summary.outcomes_unchanged} unchanged, "
            f"{summary.skipped_empty_scores} empty scores skipped"
        )
        click.echo(f"  models    {len(summary.models)}: {', '.join(summary.models) or '-'}")
        click.echo(f"  store     {store}")

    @group.command("models")
    @db_option
    @config_option
    @json_option
    def models(db: str | None, config: str | None, as_json: bool) -> None:
        """List the models the store and models.yaml know, with counts and prices."""
        from tradeoff.evals.registry import load_registry

        load_registry(config, required=config is not None)  # a mistyped --config first
        store = open_store(db, create=False)
        rows = model_rows(store, config)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        click.echo(f"store: {store}")
        print_table(
            rows,
            [
                ("name", "model"),
                ("tier", "tier"),
                ("configured", "in config"),
                ("input_usd_per_1m", "$/1M in"),
                ("output_usd_per_1m", "$/1M out"),
                ("price_source", "price from"),
                ("outcomes", "outcomes"),
                ("datasets", "datasets"),
                ("mean_score", "mean score"),
                ("calibration_summary", "calibration"),
            ],
            empty="no models yet: run `tradeoff import` or add models to models.yaml",
        )

    @group.command("datasets")
    @db_option
    @json_option
    def datasets(db: str | None, as_json: bool) -> None:
        """List the datasets in the store with item and outcome counts."""
        store = open_store(db, create=False)
        rows = dataset_rows(store)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        click.echo(f"store: {store}")
        for row in rows:
            row["splits"] = ", ".join(f"{k}:{v}" for k, v in row["splits"].items())
        print_table(
            rows,
            [(n, n) for n in ("dataset", "items", "outcomes", "models", "tasks", "splits")],
            empty="no datasets yet: run `tradeoff import PATH --dataset NAME` or `tradeoff demo`",
        )


def print_warnings(warnings: list[str], limit: int = 10) -> None:
    """The first `limit` warnings on stderr, then how many more there are."""
    for warning in warnings[:limit]:
        click.echo(f"warning: {warning}", err=True)
    if len(warnings) > limit:
        click.echo(f"warning: {len(warnings) - limit} more like these (all in --json)", err=True)


def dataset_rows(store: Store) -> list[dict[str, Any]]:
    """Per dataset: items, outcomes, models, tasks, license and {split: items}."""
    with store.connect(read_only=True) as con:
        result = con.execute(DATASETS_IN_STORE)
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
        splits = con.execute(SPLITS_IN_STORE).fetchall()
    for row in rows:
        row["splits"] = {split: n for dataset, split, n in splits if dataset == row["dataset"]}
    return rows


def model_rows(store: Store, config: str | None) -> list[dict[str, Any]]:
    """Store models merged with models.yaml entries, by name, each with its outcome counts (a
    model `eval` measured has no row in the store's `models` table, only outcomes)."""
    from tradeoff.evals.local import describe_calibration
    from tradeoff.evals.registry import load_registry
    from tradeoff.evals.store.outcomes import model_counts

    with store.connect(read_only=True) as con:
        result = con.execute(MODELS_IN_STORE)
        names = [d[0] for d in result.description]
        stored = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
        counts = model_counts(con)
    rows: dict[str, dict[str, Any]] = {}
    for s in stored:
        rows[s["name"]] = {
            "name": s["name"],
            "tier": s["tier"],
            "configured": False,
            "input_usd_per_1m": _per_million(s["input_cost_per_token"]),
            "output_usd_per_1m": _per_million(s["output_cost_per_token"]),
            "price_source": "store" if s["input_cost_per_token"] is not None else None,
            "calibration": json.loads(s["calibration"]) if s["calibration"] else None,
        }
    for name in counts.keys() - rows.keys():  # measured, never registered in the store
        rows[name] = {
            "name": name,
            "tier": None,
            "configured": False,
            "input_usd_per_1m": None,
            "output_usd_per_1m": None,
            "price_source": None,
            "calibration": None,
        }
    for name, row in rows.items():
        n, datasets, mean = counts.get(name, (0, 0, None))
        row.update(
            outcomes=n, datasets=datasets, mean_score=None if mean is None else round(mean, 4)
        )
    for entry in load_registry(config, required=config is not None):  # a named one must exist
        row = rows.setdefault(
            entry.name,
            {"name": entry.name, "outcomes": 0, "datasets": 0, "mean_score": None},
        )
        row.update(tier=entry.tier, configured=True)
        row.setdefault("calibration", None)
        if entry.extra.get("calibration") is not None:
            row["calibration"] = entry.extra["calibration"]
            row["calibration_summary"] = describe_calibration(entry)
        price = _configured_price(entry)
        # A local model without a calibrated price keeps the one the store has, if any.
        if price["price_source"] != "unknown" or row.get("input_usd_per_1m") is None:
            row.update(price)
    return sorted(rows.values(), key=lambda r: r["name"])


def _configured_price(entry: Any) -> dict[str, Any]:
    from tradeoff.evals.llm import token_prices

    source = "override" if entry.price_override is not None else "litellm"
    try:
        price_in, price_out = token_prices(entry)
    except ConfigError:
        return {"input_usd_per_1m": None, "output_usd_per_1m": None, "price_source": "unknown"}
    return {
        "input_usd_per_1m": _per_million(price_in),
        "output_usd_per_1m": _per_million(price_out),
        "price_source": source,
    }


def _per_million(per_token: float | None) -> float | None:
    return None if per_token is None else round(per_token * 1e6, 6)


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], empty: str) -> None:
    """A plain rich table on stdout; `empty` when there are no rows."""
    if not rows:
        click.echo(empty)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False)
    for key, title in columns:
        numeric = any(isinstance(r.get(key), int | float) for r in rows)
        table.add_column(title, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key, _ in columns))
    Console(width=200, highlight=False).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return "yes"
    return str(value)
