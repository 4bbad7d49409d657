"""Policy versions in the store: an append-only history per policy name.

Every artifact stored under a name gets the next version number (1, 2, ...) in
`policy_versions`; storing the same artifact again reuses its version. What happens to versions
is an append-only log, `policy_events`: `promoted` (it serves from now on), `rejected` (a refit
candidate that failed the promotion test), `rolled_back` (it stopped serving by a rollback) and
`violated` (the live monitor found it breaking its requirement). Nothing is updated or deleted.

The **serving** version of a name is the version of its latest `promoted` event, and that
event's `seq` is the version's **epoch**: the live monitor counts only pairs graded in the
current epoch, so a promotion or a rollback starts a fresh check. `NAME` resolves to the serving
version, `NAME@N` to version N. (A policy file's `version` key is the *file-format* version; the
policy's own version is the artifact's `policy_version`.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact, artifact_from_dict, load_artifact
from tradeoff.policies.errors import PolicyFileError, UnknownPolicyError

__all__ = [
    "Serving",
    "StoredPolicy",
    "VersionRow",
    "alarms",
    "append_event",
    "event_time",
    "history",
    "latest_events",
    "latest_version",
    "load_policy",
    "parse_ref",
    "promoted_versions",
    "record_alarm",
    "record_version",
    "resolve",
    "serving",
    "serving_all",
    "version_of",
]

_REF = re.compile(r"^(?P<name>[^@\s/\\]+)(?:@(?P<version>\d+))?$")


def now() -> datetime:
    """UTC without a zone, the way the request log stamps rows."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Serving:
    """The version serving a name, and since when (its promotion event)."""

    name: str
    version: int
    epoch: int
    since: datetime
    policy_id: str


@dataclass(frozen=True)
class StoredPolicy:
    """A stored artifact with its version; `epoch` is set when that version is serving."""

    artifact: PolicyArtifact
    version: int
    epoch: int | None


@dataclass(frozen=True)
class VersionRow:
    """One line of `tradeoff policies`."""

    name: str
    version: int
    state: str  # serving | candidate | rejected | retired | rolled_back
    source: str
    family: str
    created_at: datetime
    promised: dict[str, Any]
    detail: dict[str, Any]


def parse_ref(text: str) -> tuple[str, int | None] | None:
    """`NAME` or `NAME@VERSION` -> (name, version or None); None when it is not a reference."""
    match = _REF.match(text.strip())
    if match is None:
        return None
    version = match.group("version")
    return match.group("name"), int(version) if version else None


def record_version(
    con: Any,
    name: str,
    policy_id: str,
    source: str,
    *,
    detail: dict[str, Any] | None = None,
    parent: int | None = None,
) -> int:
    """The version of `policy_id` under `name`: the latest one when it is the same artifact,
    else a new one (inside the caller's transaction)."""
    row = con.execute(
        "SELECT version, policy_id FROM policy_versions WHERE name = ? "
        "ORDER BY version DESC LIMIT 1",
        [name],
    ).fetchone()
    if row is not None and row[1] == policy_id:
        return int(row[0])
    version = 1 if row is None else int(row[0]) + 1
    con.execute(
        "INSERT INTO policy_versions (name, version, policy_id, source, parent_version, detail, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [name, version, policy_id, source, parent, json.dumps(detail or {}), now()],
    )
    return version


def append_event(
    con: Any, name: str, version: int, event: str, detail: dict[str, Any] | None = None
) -> int:
    """Append one event (inside the caller's transaction); returns its seq."""
    row = con.execute(
        "SELECT coalesce(max(seq), 0) FROM policy_events WHERE name = ?", [name]
    ).fetchone()
    seq = int(row[0]) + 1 if row else 1
    con.execute(
        "INSERT INTO policy_events (name, seq, version, event, detail, happened_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [name, seq, version, event, json.dumps(detail or {}), now()],
    )
    return seq


def event_time(store: Store, name: str, seq: int) -> datetime | None:
    """When event `seq` of `name` happened (a serving version's epoch: its promotion)."""
    with store.connect() as con:
        row = con.execute(
            "SELECT happened_at FROM policy_events WHERE name = ? AND seq = ?", [name, seq]
        ).fetchone()
    return row[0] if row else None


def alarms(con: Any, name: str, version: int, epoch: int) -> list[dict[str, Any]]:
    """The details of the `violated` events of `name`'s `version` in its epoch, oldest first."""
    rows = con.execute(
        "SELECT detail FROM policy_events WHERE name = ? AND version = ? AND seq > ? "
        "AND event = 'violated' ORDER BY seq",
        [name, version, epoch],
    ).fetchall()
    return [_json(detail) for (detail,) in rows]


def record_alarm(store: Store, name: str, version: int, epoch: int, detail: dict[str, Any]) -> bool:
    """Append a `violated` event for `version` unless its epoch has one; whether it did."""
    with store.transaction() as con:
        if alarms(con, name, version, epoch):
            return False
        append_event(con, name, version, "violated", detail)
    return True


def latest_events(con: Any, event: str, name: str | None = None) -> dict[str, tuple[int, dict]]:
    """Per name (or of `name` only), the version and detail of its latest `event` event."""
    rows = con.execute(
        "SELECT name, version, detail FROM policy_events WHERE event = ?"
        + (" AND name = ?" if name else "")
        + " ORDER BY name, seq",
        [event, name] if name else [event],
    ).fetchall()
    return {str(r[0]): (int(r[1]), _json(r[2])) for r in rows}


def promoted_versions(con: Any, name: str) -> list[int]:
    """The versions of `name` that were promoted, in the order of their promotions."""
    rows = con.execute(
        "SELECT version FROM policy_events WHERE name = ? AND event = 'promoted' ORDER BY seq",
        [name],
    ).fetchall()
    return [int(r[0]) for r in rows]


def latest_version(con: Any, name: str) -> int | None:
    """The highest version stored under `name`, or None."""
    row = con.execute("SELECT max(version) FROM policy_versions WHERE name = ?", [name]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


_SERVING = """
SELECT e.name, e.version, e.seq, e.happened_at, v.policy_id
FROM policy_events e JOIN policy_versions v ON v.name = e.name AND v.version = e.version
WHERE e.event = 'promoted' AND e.seq = (
    SELECT max(seq) FROM policy_events p WHERE p.name = e.name AND p.event = 'promoted'
)
"""


def serving_all(con: Any) -> dict[str, Serving]:
    """Every name's serving version."""
    rows = con.execute(_SERVING + " ORDER BY e.name").fetchall()
    return {r[0]: Serving(r[0], int(r[1]), int(r[2]), r[3], r[4]) for r in rows}


def serving(store: Store, name: str) -> Serving | None:
    """The version serving `name` now, or None."""
    with store.connect() as con:
        row = con.execute(_SERVING + " AND e.name = ?", [name]).fetchone()
    return None if row is None else Serving(row[0], int(row[1]), int(row[2]), row[3], row[4])


def _artifact(con: Any, name: str, version: int, where: str) -> PolicyArtifact:
    row = con.execute(
        "SELECT p.artifact FROM policy_versions v JOIN policies p ON p.policy_id = v.policy_id "
        "WHERE v.name = ? AND v.version = ?",
        [name, version],
    ).fetchone()
    if row is None:
        raise PolicyFileError(f"{where}: the stored artifact of {name}@{version} is missing")
    doc = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return replace(artifact_from_dict(doc, where), policy_version=version)


def resolve(store: Store, ref: str) -> StoredPolicy:
    """The stored policy `NAME` (its serving version) or `NAME@VERSION`."""
    parsed = parse_ref(ref)
    if parsed is None:
        raise PolicyFileError(f"{ref!r} is not a stored policy name (NAME or NAME@VERSION)")
    name, version = parsed
    where = f"{store}:{ref}"
    with store.connect() as con:
        current = con.execute(_SERVING + " AND e.name = ?", [name]).fetchone()
        known = latest_version(con, name)
        if known is None:
            raise UnknownPolicyError(
                f"no stored policy {name!r} in {store}; fit one with `tradeoff fit --name "
                f"{name}` or pass a policy file (`tradeoff policies` lists stored ones)"
            )
        if version is None:
            if current is None:
                raise PolicyFileError(
                    f"no version of policy {name!r} is serving; name one as {name}@VERSION "
                    "(`tradeoff policies` lists them)"
                )
            version = int(current[1])
        elif version < 1 or version > known:
            raise UnknownPolicyError(
                f"policy {name!r} has versions 1-{known}, not {version}; "
                "`tradeoff policies` lists them"
            )
        artifact = _artifact(con, name, version, where)
    epoch = int(current[2]) if current is not None and int(current[1]) == version else None
    return StoredPolicy(artifact, version, epoch)


def version_of(store: Store, name: str, policy_id: str) -> int | None:
    """The newest version of `name` holding artifact `policy_id`."""
    with store.connect() as con:
        row = con.execute(
            "SELECT max(version) FROM policy_versions WHERE name = ? AND policy_id = ?",
            [name, policy_id],
        ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def load_policy(ref: str, store: Callable[[], Store]) -> PolicyArtifact:
    """A policy file, or a stored policy `NAME` / `NAME@VERSION` (the file wins a tie).

    `store` opens the store only when `ref` is not a file.
    """
    path = Path(ref)
    if path.is_file() or parse_ref(ref) is None or path.suffix == ".json":
        return load_artifact(path)
    return resolve(store(), ref).artifact


def _state(version: int, events: list[tuple[int, str]], serving_version: int | None) -> str:
    if version == serving_version:
        return "serving"
    mine = [event for v, event in events if v == version]
    if "promoted" in mine:
        moves = [e for e in mine if e in ("promoted", "rolled_back")]
        return "rolled_back" if moves and moves[-1] == "rolled_back" else "retired"
    return "rejected" if "rejected" in mine else "candidate"


def history(store: Store, name: str | None = None) -> list[VersionRow]:
    """Every version (of `name`, or of every name), oldest first, with its state."""
    params = [name] if name else []
    with store.connect() as con:
        rows = con.execute(
            "SELECT v.name, v.version, v.source, v.detail, v.created_at, p.family, p.metrics "
            "FROM policy_versions v LEFT JOIN policies p ON p.policy_id = v.policy_id "
            f"{'WHERE v.name = ?' if name else ''} ORDER BY v.name, v.version",
            params,
        ).fetchall()
        events = con.execute(
            f"SELECT name, version, event FROM policy_events {'WHERE name = ?' if name else ''} "
            "ORDER BY name, seq",
            params,
        ).fetchall()
        current = serving_all(con)
    by_name: dict[str, list[tuple[int, str]]] = {}
    for ev_name, version, event in events:
        by_name.setdefault(ev_name, []).append((int(version), event))
    out = []
    for r in rows:
        metrics = _json(r[6])
        promised = {
            k: metrics.get(k)
            for k in ("accuracy_vs_baseline", "accuracy_vs_baseline_ci", "savings_vs_baseline")
        }
        now_serving = current.get(r[0])
        out.append(
            VersionRow(
                name=r[0],
                version=int(r[1]),
                state=_state(
                    int(r[1]),
                    by_name.get(r[0], []),
                    now_serving.version if now_serving else None,
                ),
                source=r[2],
                family=r[5] or "?",
                created_at=r[4],
                promised=promised,
                detail=_json(r[3]),
            )
        )
    return out


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    doc = json.loads(value) if isinstance(value, str) else value
    return doc if isinstance(doc, dict) else {}
