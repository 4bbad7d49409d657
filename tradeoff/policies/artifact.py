"""The policy artifact: a versioned JSON file (and a row in the store's `policies` table).

```json
{"version": 1, "name": "...", "family": "learned", "params": {...}, "models": [...],
 "dataset": "...", "data_hash": "...", "requirement": "...", "baseline": "...",
 "metrics": {...held-out...}, "created_at": "2026-01-01T00:00:00Z", "policy_version": 3}
```

`version` is the file format's version. `policy_version` is the policy's own version in the
store (policies/versions.py); it is absent from files of policies never stored, and it is not
part of the content hash `policy_id`.

The proxy calls `load_artifact(path).policy()`; any problem with the file is one
`PolicyFileError` line saying what to fix.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from tradeoff.evals.errors import TradeoffError, require_file
from tradeoff.evals.store import Store
from tradeoff.policies.errors import PolicyFileError
from tradeoff.policies.families.base import Policy, create_policy

VERSION = 1
REQUIRED = ("name", "family", "params")


@dataclass(frozen=True)
class PolicyArtifact:
    """A fitted (or hand-written) policy with the provenance of its numbers."""

    name: str
    family: str
    params: dict[str, Any]
    models: list[str] = field(default_factory=list)
    dataset: str | None = None
    data_hash: str | None = None
    requirement: str | None = None
    baseline: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    version: int = VERSION
    policy_version: int | None = None

    @classmethod
    def from_policy(cls, name: str, policy: Policy, **provenance: Any) -> PolicyArtifact:
        created = provenance.pop("created_at", None) or datetime.now(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        return cls(
            name=name,
            family=policy.family,
            params=policy.to_params(),
            models=list(policy.models),
            created_at=created,
            **provenance,
        )

    def policy(self) -> Policy:
        """The runnable policy; a bad family or params raise a one-line TradeoffError."""
        return create_policy(self.family, self.params)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["policy_version"] is None:
            del out["policy_version"]
        return {"version": out.pop("version"), **out}

    def content(self) -> dict[str, Any]:
        """The dict without `policy_version`: what the store keeps and the id hashes."""
        return {k: v for k, v in self.to_dict().items() if k != "policy_version"}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @cached_property
    def policy_id(self) -> str:
        """Content hash: the same artifact always gets the same id (computed once: the proxy
        asks per request, and a learned router's parameters run to ~100 kB)."""
        body = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def artifact_from_dict(doc: Any, where: str = "policy") -> PolicyArtifact:
    if not isinstance(doc, dict):
        raise PolicyFileError(f"{where}: expected a JSON object with family and params")
    version = doc.get("version")
    if version != VERSION:
        raise PolicyFileError(
            f"{where}: policy file version {version!r} is not supported (expected {VERSION}); "
            "refit it with `tradeoff fit`"
        )
    missing = [key for key in REQUIRED if key not in doc]
    if missing:
        raise PolicyFileError(f"{where}: missing {', '.join(missing)}; refit with `tradeoff fit`")
    if not isinstance(doc["params"], dict):
        raise PolicyFileError(f"{where}: params must be a JSON object")
    known = {f for f in PolicyArtifact.__dataclass_fields__}
    return PolicyArtifact(**{k: v for k, v in doc.items() if k in known})


def load_artifact(path: str | os.PathLike[str]) -> PolicyArtifact:
    """Read and validate a policy file, including that its policy can be built."""
    p = require_file(path, "policy file", f"create one with `tradeoff fit --out {path}`")
    try:
        text = p.read_text()
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy file {p}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(
            f"{p}: not valid JSON (line {exc.lineno}: {exc.msg}); refit with `tradeoff fit`"
        ) from None
    artifact = artifact_from_dict(doc, str(p))
    try:
        artifact.policy()
    except PolicyFileError:
        raise
    except TradeoffError as exc:
        raise PolicyFileError(f"{p}: {exc}") from None
    return artifact


def save_artifact(artifact: PolicyArtifact, path: str | os.PathLike[str]) -> Path:
    """Write the artifact as JSON (atomically: a reader never sees half a file)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        tmp.write_text(artifact.to_json() + "\n")
        tmp.replace(p)
    except OSError as exc:
        raise PolicyFileError(f"cannot write policy file {p}: {exc.strerror}") from None
    return p


def insert_artifact(con: Any, artifact: PolicyArtifact) -> str:
    """Insert (or replace) the artifact's `policies` row inside a transaction; return its id."""
    pid = artifact.policy_id
    con.execute("DELETE FROM policies WHERE policy_id = ?", [pid])
    con.execute(
        "INSERT INTO policies (policy_id, name, family, dataset, data_hash, requirement, "
        "baseline, artifact, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            pid,
            artifact.name,
            artifact.family,
            artifact.dataset,
            artifact.data_hash,
            artifact.requirement,
            artifact.baseline,
            json.dumps(artifact.content()),
            json.dumps(artifact.metrics),
        ],
    )
    return pid


def store_artifact(store: Store, artifact: PolicyArtifact, *, promote: bool = True) -> str:
    """Store the artifact as the next version of its name (the same version when nothing
    changed) and, with `promote`, make it the serving one; return its id.

    `tradeoff fit` promotes what it stores: the fit already accepted it on validation items at
    the requirement's lower bound. Refits go through `policies.loop.promote` instead.
    """
    from tradeoff.policies.versions import append_event, record_version, serving_all

    with store.transaction() as con:
        pid = insert_artifact(con, artifact)
        version = record_version(con, artifact.name, pid, "fit")
        current = serving_all(con).get(artifact.name)
        if promote and (current is None or current.version != version):
            append_event(con, artifact.name, version, "promoted", {"by": "fit"})
    return pid


def stored_artifact(store: Store, name_or_id: str) -> PolicyArtifact:
    """The newest stored artifact with this name (or exactly this policy_id)."""
    with store.connect() as con:
        row = con.execute(
            "SELECT artifact FROM policies WHERE policy_id = ? OR name = ? "
            "ORDER BY created_at DESC LIMIT 1",
            [name_or_id, name_or_id],
        ).fetchone()
    if row is None:
        raise PolicyFileError(f"no policy {name_or_id!r} in {store}; fit one with `tradeoff fit`")
    return artifact_from_dict(json.loads(row[0]), f"{store}:{name_or_id}")
