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

__all__ = [
    "COLUMNS",
    "REVIEW_SCHEMA",
    "SCHEMA",
    "QueuedReview",
    "RequestRow",
    "from_line",
    "loggable",
    "review_arrow",
    "to_arrow",
    "to_line",
]


@dataclass(frozen=True)
class QueuedReview:
    """A request answered with a draft while a person reviews it: its row in `reviews`,
    written in the same transaction as its request row (so it is exactly as durable)."""

    review_id: str
    reviewer: str
    draft_model: str | None
    prompt: str | None  # the request's prompt as the log keeps it (flattened messages)
    answer: str | None  # the draft answer the client got
    review_cost_usd: float | None
    # The served policy version whose monitor the verdict feeds (policies/loop/reviews.py).
    policy_version: int | None = None
    epoch: int | None = None
    policy_id: str | None = None
    baseline: str | None = None  # the policy's baseline, whose score a verdict may measure


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
    review_id: str | None = None  # the request waits for a human review (router/review)
    # Not a column: the review's row in `reviews` (only on a request routed to a reviewer).
    review: QueuedReview | None = None


COLUMNS = [f.name for f in fields(RequestRow) if f.name != "review"]
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
        ("review_id", pa.string()),
    ]
)
REVIEW_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),
        ("request_id", pa.string()),
        ("policy", pa.string()),
        ("policy_version", pa.int32()),
        ("epoch", pa.int64()),
        ("policy_id", pa.string()),
        ("baseline", pa.string()),
        ("reviewer", pa.string()),
        ("draft_model", pa.string()),
        ("task", pa.string()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("review_cost_usd", pa.float64()),
        ("draft_cost_usd", pa.float64()),
        ("created_at", pa.timestamp("us")),
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
    review = row.review
    if review is not None:
        texts: dict[str, Any] = {
            k: loggable_text(v)
            for k, v in dataclasses.asdict(review).items()
            if isinstance(v, str) and loggable_text(v) is not v
        }
        if texts:
            changes["review"] = dataclasses.replace(review, **texts)
    return dataclasses.replace(row, **changes) if changes else row


def to_line(row: RequestRow) -> bytes:
    """One JSON line (ASCII, newline-terminated): the spool's and the dead-letter file's form."""
    data = {name: getattr(row, name) for name in COLUMNS}
    data["created_at"] = row.created_at.isoformat()
    if row.review is not None:
        data["review"] = dataclasses.asdict(row.review)
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def from_line(line: bytes) -> RequestRow:
    """The row a `to_line` line holds; raises ValueError for a line that is not one."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a spool line must be a JSON object")
    try:
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        review = data.get("review")
        return RequestRow(
            **{name: data[name] for name in COLUMNS if name in data},
            review=QueuedReview(**review) if isinstance(review, dict) else None,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a request row: {exc}") from None


def to_arrow(rows: list[RequestRow]) -> pa.Table:
    """The rows as one Arrow table in the `requests` table's column order."""
    columns = zip(*([getattr(row, c) for c in COLUMNS] for row in rows), strict=True)
    arrays = [pa.array(values, type=f.type) for values, f in zip(columns, SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def review_arrow(rows: list[RequestRow]) -> pa.Table | None:
    """The `reviews` rows of the requests among `rows` that wait for a review (None: none)."""
    queued = [
        {
            **dataclasses.asdict(row.review),
            "request_id": row.request_id,
            "policy": row.policy,
            "task": row.task,
            "draft_cost_usd": _draft_cost(row),
            "created_at": row.created_at,
        }
        for row in rows
        if row.review is not None
    ]
    return pa.Table.from_pylist(queued, schema=REVIEW_SCHEMA) if queued else None


def _draft_cost(row: RequestRow) -> float | None:
    """What the draft's tokens cost (the row's cost includes the review's price)."""
    if row.cost_usd is None or row.review is None:
        return row.cost_usd
    return max(0.0, row.cost_usd - (row.review.review_cost_usd or 0.0))
