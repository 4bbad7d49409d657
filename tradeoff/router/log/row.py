"""One row of the request log, and the two forms it travels in.

A row is a JSON line on its way to disk (the spool, the dead-letter file) and part of an Arrow
batch on its way into the store. `loggable(row)` is the log's edge: whatever a client or an
upstream sent, the row it returns can be written to any store (DuckDB, PostgreSQL) and encoded
as UTF-8, so one request can never make the rows after it unwritable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import pyarrow as pa

__all__ = ["COLUMNS", "SCHEMA", "RequestRow", "from_line", "loggable", "to_arrow", "to_line"]


@dataclass(frozen=True)
class RequestRow:
    """One row of `requests` (columns in the table's order; later columns have defaults, so a
    spool line written before a column existed still reads)."""

    request_id: str
    created_at: datetime
    policy: str | None
    requested_model: str
    model: str | None
    task: str | None
    stream: bool
    attempts: int
    fallbacks: int
    status: int
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    baseline_cost_usd: float | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt: str | None
    # The upstream sent no usage: tokens were counted by the proxy, so cost is an estimate.
    cost_estimated: bool = False
    protocol: str | None = None  # chat | responses | anthropic | embeddings | completions
    session: str | None = None  # the conversation (router/sessions.py), when routed in one
    cached_tokens: int | None = None  # of prompt_tokens: read from the provider's prompt cache
    cache_write_tokens: int | None = None  # of prompt_tokens: written to it
    reasoning_tokens: int | None = None  # of completion_tokens: spent reasoning
    route_reason: str | None = None  # why the route's models: the plan's reason, pass-through
    key_name: str | None = None  # the client key's name in `serve --keys` (router/keys/keyfile.py)
    # What a translation left out of the answering model's request: hints and offered built-in
    # tools (router/protocols/translation.py), comma-separated; None: nothing.
    dropped: str | None = None
    rounds: int | None = None  # the rounds a refine variant ran (router/refine.py); None: one call
    escalated: str | None = None  # the model a refine variant's failed answer went on to


COLUMNS = [f.name for f in fields(RequestRow)]
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("policy", pa.string()),
        ("requested_model", pa.string()),
        ("model", pa.string()),
        ("task", pa.string()),
        ("stream", pa.bool_()),
        ("attempts", pa.int32()),
        ("fallbacks", pa.int32()),
        ("status", pa.int32()),
        ("error", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("baseline_cost_usd", pa.float64()),
        ("latency_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("prompt", pa.string()),
        ("cost_estimated", pa.bool_()),
        ("protocol", pa.string()),
        ("session", pa.string()),
        ("cached_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("route_reason", pa.string()),
        ("key_name", pa.string()),
        ("dropped", pa.string()),
        ("rounds", pa.int32()),
        ("escalated", pa.string()),
    ]
)
# Columns by kind, from the annotations (strings here: `from __future__ import annotations`).
_TEXT = [f.name for f in fields(RequestRow) if str(f.type).startswith("str")]
_BIG = [f.name for f in fields(RequestRow) if f.name.endswith("_tokens")]  # from upstreams
_REAL = [f.name for f in fields(RequestRow) if str(f.type).startswith("float")]
# Lone surrogates (JSON's "\ud800" decodes to one) cannot be encoded as UTF-8; PostgreSQL's
# text cannot hold NUL. Both become their \uXXXX escape: visible, and storable anywhere.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_INT64 = 2**63 - 1


def loggable_text(value: str) -> str:
    """`value` with every code point no store can hold written as its `\\uXXXX` escape."""
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def loggable(row: RequestRow) -> RequestRow:
    """The row with its text escaped where needed, and token counts or amounts no column can
    hold (an upstream's `"prompt_tokens": 1e30`, a NaN) set to NULL."""
    changes: dict[str, Any] = {}
    for name in _TEXT:
        value = getattr(row, name)
        if isinstance(value, str):
            clean = loggable_text(value)
            if clean is not value:
                changes[name] = clean
    for name in _BIG:
        value = getattr(row, name)
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _INT64
        if value is not None and not ok:
            changes[name] = None
    for name in _REAL:
        value = getattr(row, name)
        if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
            changes[name] = None
    return dataclasses.replace(row, **changes) if changes else row


def to_line(row: RequestRow) -> bytes:
    """One JSON line (ASCII, newline-terminated): the spool's and the dead-letter file's form."""
    data = {name: getattr(row, name) for name in COLUMNS}
    data["created_at"] = row.created_at.isoformat()
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def from_line(line: bytes) -> RequestRow:
    """The row a `to_line` line holds; raises ValueError for a line that is not one."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a spool line must be a JSON object")
    try:
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        return RequestRow(**{name: data[name] for name in COLUMNS if name in data})
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a request row: {exc}") from None


def to_arrow(rows: list[RequestRow]) -> pa.Table:
    """The rows as one Arrow table in the `requests` table's column order."""
    columns = zip(*(dataclasses.astuple(row) for row in rows), strict=True)
    arrays = [pa.array(values, type=f.type) for values, f in zip(columns, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
