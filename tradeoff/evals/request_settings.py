"""An item's request settings: what its `metadata` asks to send with every eval call of it.

`response_format`, `tools` and `tool_choice` go on the wire as they are; `params` holds any
other request fields (`max_tokens`, `temperature`, ...). They win over the run's own parameters
(the item is defined by them, as the app would send it); a variant's own settings win over both
(the variant is defined by its settings). The same metadata is what capability gating reads.
"""

from __future__ import annotations

from typing import Any

from tradeoff.evals.variants import RESERVED_PARAMS

WIRE_KEYS = ("response_format", "tools", "tool_choice")


def settings_problem(metadata: dict[str, Any]) -> str | None:
    """Why `metadata`'s request settings cannot be sent, or None."""
    params = metadata.get("params")
    if params is not None and not isinstance(params, dict):
        return "params must be an object of request fields"
    reserved = sorted(RESERVED_PARAMS & set(params or {}))
    if reserved:
        return f"params may not set {', '.join(reserved)} (the call sets them)"
    if "tools" in metadata and not isinstance(metadata["tools"], list):
        return "tools must be a list"
    fmt = metadata.get("response_format")
    if fmt is not None and not isinstance(fmt, dict):
        return "response_format must be an object"
    return None


def request_settings(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The request fields an item's metadata sends with each of its calls."""
    metadata = metadata or {}
    out = dict(metadata.get("params") or {})
    out.update({k: metadata[k] for k in WIRE_KEYS if metadata.get(k) is not None})
    return out
