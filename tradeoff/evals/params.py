"""Call parameters (temperature, max_tokens, ...) and the hash that keys outcomes by them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def params_hash(params: dict[str, Any]) -> str:
    """A short stable hash of the call parameters; '' for none.

    Outcomes are keyed by (dataset, item_id, model, params_hash, sample), so the same model
    run at another temperature is a different measurement. Empty params hash to '' (the
    schema's default), so imported outcomes and default live runs share a key.
    """
    clean = {k: v for k, v in params.items() if v is not None}
    if not clean:
        return ""
    canonical = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
