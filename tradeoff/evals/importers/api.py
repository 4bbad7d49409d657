"""`import_file`: pick the format's parser, then write the result in one transaction."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from tradeoff.evals.errors import ImportFormatError, UsageError
from tradeoff.evals.importers import items, long, routerbench
from tradeoff.evals.importers.prepared import Prepared
from tradeoff.evals.importers.table import Table, file_kind, read_table
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
    """Import one file into `dataset`. `split` fills rows whose own split is blank; `fmt`
    "auto" tells the format from the file's columns (`detect_format`)."""
    started = time.perf_counter()
    if fmt not in FORMATS and fmt != "auto":
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)} or auto")
    if not NAME.match(dataset):
        raise UsageError(
            f"dataset name {dataset!r} is not allowed; use letters, digits, '.', '_' or '-'"
        )
    file = Path(path)
    if fmt == "auto":
        table = read_table(file)
        fmt = detect_format(table)
        parse, kinds = FORMATS[fmt]
        file_kind(file, kinds)  # e.g. items come only as JSONL
    else:
        parse, kinds = FORMATS[fmt]
        table = read_table(file, kinds)
    try:
        prepared = parse(table, split)
    except ImportFormatError as exc:
        looks = detect_format(table)
        if exc.problem.startswith("required column is missing") and looks != fmt:
            hint = f"; the file looks like {looks}: pass --format {looks}"
            raise ImportFormatError(exc.path, exc.line, exc.column, exc.problem + hint) from None
        raise
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


def detect_format(table: Table) -> str:
    """The format a file's columns say it is in: "items" (ids and prompts, no model or score),
    "routerbench" (RouterBench's sample_id and eval_name, no model column), else "long"
    (whose parser names any column that is missing)."""
    columns = set(table.frame.columns)
    outcomes = bool(columns & {"model", "score"})
    if not outcomes and columns & {"id", "item_id"} and columns & {"prompt", "messages"}:
        return "items"
    if not outcomes and {"sample_id", "eval_name"} <= columns:
        return "routerbench"
    return "long"
