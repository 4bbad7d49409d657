"""`import_file`: pick the format's parser, then write the result in one transaction."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from tradeoff.evals.errors import UsageError
from tradeoff.evals.importers import items, long, routerbench
from tradeoff.evals.importers.prepared import Prepared
from tradeoff.evals.importers.table import Table, read_table
from tradeoff.evals.importers.write import ImportSummary, write_prepared
from tradeoff.evals.store import Store

Parser = Callable[[Table, str | None], Prepared]

# format -> (parser, file types it accepts)
FORMATS: dict[str, tuple[Parser, tuple[str, ...]]] = {
    "long": (long.prepare, ("csv", "jsonl", "parquet")),
    "routerbench": (routerbench.prepare, ("csv", "parquet")),
    "items": (items.prepare, ("jsonl",)),
}

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def import_file(
    store: Store,
    path: str | os.PathLike[str],
    dataset: str,
    fmt: str = "long",
    split: str | None = None,
    *,
    license: str | None = None,
    description: str | None = None,
) -> ImportSummary:
    """Import one file into `dataset`. `split` fills rows whose own split is blank."""
    started = time.perf_counter()
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not NAME.match(dataset):
        raise UsageError(
            f"dataset name {dataset!r} is not allowed; use letters, digits, '.', '_' or '-'"
        )
    parse, kinds = FORMATS[fmt]
    file = Path(path)
    prepared = parse(read_table(file, kinds), split)
    return write_prepared(
        store,
        prepared,
        dataset=dataset,
        path=file,
        fmt=fmt,
        split=split,
        license=license,
        description=description,
        started=started,
    )
