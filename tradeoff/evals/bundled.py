"""The outcome data shipped with tradeoff (datasets/ in a checkout, inside the wheel once installed).

Each bundled dataset is a folder with `outcomes.parquet` (the `long` import format),
`models.json` (each model's USD price per input/output token), README.md and the source's license.
"""

from __future__ import annotations

import json
from pathlib import Path

from tradeoff.evals.errors import StoreError
from tradeoff.evals.importers import ImportSummary, import_file
from tradeoff.evals.store import Store

# name -> (license, description)
BUNDLED: dict[str, tuple[str, str]] = {
    "llmrouter": (
        "MIT",
        "LLMRouter (ulab-uiuc): 9 open models on 14 tasks, train/test split; "
        "costs estimated from token counts and listed prices",
    ),
    "routerarena": (
        "Apache-2.0",
        "RouterArena (RouteWorks) sub_10: 2 API models on 809 queries with real cost and tokens",
    ),
}

UPSERT_PRICES = """
INSERT INTO models (name, input_cost_per_token, output_cost_per_token, source)
VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    input_cost_per_token = COALESCE(models.input_cost_per_token, excluded.input_cost_per_token),
    output_cost_per_token = COALESCE(models.output_cost_per_token, excluded.output_cost_per_token)
"""


def bundled_dir() -> Path:
    """The folder holding the bundled datasets, from a wheel or from a source checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "bundled_datasets", package.parents[1] / "datasets"):
        if all((candidate / name / "outcomes.parquet").is_file() for name in BUNDLED):
            return candidate
    raise StoreError(
        f"bundled datasets not found next to {package}; reinstall tradeoff "
        "(pip install --force-reinstall tradeoff)"
    )


def import_bundled(store: Store) -> list[ImportSummary]:
    """Import every bundled dataset (upserts, so running it again changes no rows)."""
    root = bundled_dir()
    summaries = []
    for name, (license, description) in BUNDLED.items():
        folder = root / name
        summaries.append(
            import_file(
                store,
                folder / "outcomes.parquet",
                name,
                license=license,
                description=description,
            )
        )
        prices = json.loads((folder / "models.json").read_text())
        with store.transaction() as con:
            # A price already in the store (from models.yaml or the user) wins.
            con.executemany(
                UPSERT_PRICES,
                [
                    [
                        model,
                        p["input_cost_per_token"],
                        p["output_cost_per_token"],
                        f"bundled:{name}",
                    ]
                    for model, p in prices.items()
                ],
            )
    return summaries
