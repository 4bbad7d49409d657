"""Vectorised parsing and checking of one column; the first bad cell becomes the error.

Every function takes the `Table` (for the error's file:line) and a Series aligned with its rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tradeoff.evals.importers.table import Table

# Cells that mean "no value" in a numeric column (CSV has only text; JSON has null).
NUMERIC_BLANKS = ("", "nan", "na", "n/a", "null", "none")


def blank_text(values: pd.Series) -> pd.Series:
    """True where a text cell is empty (None, NaN or only whitespace)."""
    as_text = values.astype("string").str.strip()
    return (values.isna() | as_text.isna() | (as_text == "")).astype(bool)


def text(table: Table, values: pd.Series, column: str, *, required: bool) -> pd.Series:
    """Cells as strings (kept verbatim), None where blank; a blank required cell fails."""
    blank = blank_text(values)
    if required and blank.any():
        raise table.fail(_first(blank), column, "is empty; every row needs a value")
    out = values.astype("string").astype(object)
    out[blank.to_numpy()] = None
    return out


def number(
    table: Table,
    values: pd.Series,
    column: str,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> pd.Series:
    """Cells as float (NaN where blank); a cell that is not a number, or out of range, fails."""
    if pd.api.types.is_bool_dtype(values):
        raise table.fail(0, column, "must be a number, not true/false")
    if pd.api.types.is_numeric_dtype(values):
        parsed = values.astype("float64")
        blank = parsed.isna()
    else:
        as_text = values.astype("string").str.strip()
        blank = (values.isna() | as_text.isna() | as_text.str.lower().isin(NUMERIC_BLANKS)).astype(
            bool
        )
        parsed = pd.to_numeric(values.where(~blank), errors="coerce").astype("float64")
        bad = parsed.isna() & ~blank
        if bad.any():
            pos = _first(bad)
            raise table.fail(pos, column, f"{values.iloc[pos]!r} is not a number")
    parsed = parsed.where(~blank)
    if np.isinf(parsed.fillna(0)).any():
        raise table.fail(_first(np.isinf(parsed.fillna(0))), column, "must be finite")
    if low is not None and (parsed < low).any():
        pos = _first(parsed < low)
        raise table.fail(pos, column, f"{parsed.iloc[pos]:g} is below {low:g}")
    if high is not None and (parsed > high).any():
        pos = _first(parsed > high)
        raise table.fail(pos, column, f"{parsed.iloc[pos]:g} is above {high:g}")
    if integer:
        fractional = parsed.notna() & (parsed != parsed.round())
        if fractional.any():
            pos = _first(fractional)
            raise table.fail(pos, column, f"{parsed.iloc[pos]:g} is not a whole number")
    return parsed


def score(table: Table, values: pd.Series, column: str) -> pd.Series:
    """A score in [0, 1]; NaN where blank (no outcome for that row)."""
    parsed = number(table, values, column)
    outside = (parsed < 0) | (parsed > 1)
    if outside.any():
        pos = _first(outside)
        raise table.fail(pos, column, f"{parsed.iloc[pos]:g} is outside [0, 1]")
    return parsed


def messages(table: Table, values: pd.Series, column: str) -> pd.Series:
    """Chat messages as JSON text (a list of {role, content}), None where blank."""

    def problem(parsed: Any) -> str | None:
        if isinstance(parsed, list) and all(
            isinstance(m, dict) and "role" in m and "content" in m for m in parsed
        ):
            return None
        return "must be a list of {role, content} objects"

    return _json_cells(table, values, column, problem)


def json_object(table: Table, values: pd.Series, column: str) -> pd.Series:
    """A JSON object per cell (a dict, or its JSON text in CSV) as JSON text, None where blank."""
    return _json_cells(
        table,
        values,
        column,
        lambda parsed: None if isinstance(parsed, dict) else "must be a JSON object",
    )


def _json_cells(
    table: Table, values: pd.Series, column: str, problem: Callable[[Any], str | None]
) -> pd.Series:
    """Each cell's value (JSON text in CSV, the value itself in Parquet) as JSON text, None
    where blank; `problem` says what is wrong with a value, or None."""
    out: list[str | None] = []
    for pos, cell in enumerate(values.tolist()):
        if _is_blank(cell):
            out.append(None)
            continue
        parsed: Any = cell
        if isinstance(cell, str):
            try:
                parsed = json.loads(cell)
            except json.JSONDecodeError:
                raise table.fail(pos, column, "is not valid JSON") from None
        if hasattr(parsed, "tolist"):  # a Parquet list column arrives as a numpy array
            parsed = parsed.tolist()
        wrong = problem(parsed)
        if wrong:
            raise table.fail(pos, column, wrong)
        out.append(json.dumps(parsed, ensure_ascii=False))
    return pd.Series(out, index=values.index, dtype=object)


def _is_blank(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and np.isnan(cell):
        return True
    return isinstance(cell, str) and not cell.strip()


def _first(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])
