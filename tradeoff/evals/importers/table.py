"""Reading an input file into a DataFrame that remembers where each row came from.

Errors point at `file:line`: for CSV the physical line where the record starts (quoted fields
may span lines), for JSONL the line in the file, for Parquet the 1-based row number.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tradeoff.evals.errors import ImportFormatError, UsageError, require_file

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass
class Table:
    """A file's rows (`frame`, positional index 0..n-1) and a map from row position to line."""

    path: Path
    frame: pd.DataFrame
    line_of: Callable[[int], int]

    def fail(self, position: int, column: str | None, problem: str) -> ImportFormatError:
        return ImportFormatError(str(self.path), self.line_of(position), column, problem)

    def require(self, *columns: str) -> None:
        for column in columns:
            if column not in self.frame.columns:
                raise ImportFormatError(
                    str(self.path), 1, column, "required column is missing; add it to the header"
                )


def file_kind(path: Path, allowed: tuple[str, ...]) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None or kind not in allowed:
        wanted = ", ".join(s for s, k in SUFFIXES.items() if k in allowed)
        raise UsageError(f"{path}: unsupported file type {path.suffix!r}; use {wanted}")
    return kind


def read_table(path: Path, allowed: tuple[str, ...] = ("csv", "jsonl", "parquet")) -> Table:
    """Read CSV (all cells as text), JSONL (one object a line) or Parquet."""
    require_file(path, "input file", "check the path")
    kind = file_kind(path, allowed)
    if kind == "csv":
        return _read_csv(path)
    if kind == "jsonl":
        return _read_jsonl(path)
    return _read_parquet(path)


def _read_csv(path: Path) -> Table:
    try:
        # Text only, no NA guessing: a reference answer "None" or "NA" stays a string.
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ImportFormatError(str(path), None, None, f"not a readable CSV file: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    starts: list[int] = []

    def line_of(position: int) -> int:
        if not starts:  # only errors and warnings ask: scan the file once, then remember
            starts.extend(_csv_record_starts(path))
        return starts[position + 1] if position + 1 < len(starts) else position + 2

    return Table(path, frame.reset_index(drop=True), line_of)


def _csv_record_starts(path: Path) -> list[int]:
    """The line where each record (the header first) starts; quoted fields may span lines."""
    starts = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        last = 0
        for _record in reader:
            starts.append(last + 1)
            last = reader.line_num
    return starts


def _read_jsonl(path: Path) -> Table:
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text.rstrip("\r\n"))  # an error at its end is on this line
            except json.JSONDecodeError as exc:
                raise ImportFormatError(
                    str(path), number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
                ) from exc
            if not isinstance(record, dict):
                raise ImportFormatError(str(path), number, None, "each line must be a JSON object")
            records.append(record)
            lines.append(number)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    return Table(path, frame, lambda pos: lines[pos])


def _read_parquet(path: Path) -> Table:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ImportFormatError(
            str(path), None, None, f"not a readable Parquet file: {exc}"
        ) from exc
    return Table(path, frame.reset_index(drop=True), lambda pos: pos + 1)
