"""The policies being served, reloaded atomically when their source changes or on SIGHUP.

A policy comes from a file (`--policy policy.json`) or from the store (`--policy NAME` follows
the name's serving version; `NAME@VERSION` pins one). The poller checks files' mtimes and, for
followed names, which version serves (policies/versions.py): a promotion or a rollback is
picked up like an edited file.

`PolicyBook.current` is an immutable mapping swapped in one assignment, so a request sees either
the old set or the new one, never half of each, and nothing in flight is dropped. A source that
fails to load (bad JSON, unknown family, a model not configured) keeps its previous policy and
the reason is logged.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tradeoff.evals.errors import ConfigError, TradeoffError, require_file
from tradeoff.evals.store import Store
from tradeoff.policies.artifact import PolicyArtifact, load_artifact
from tradeoff.policies.families.base import Policy

log = logging.getLogger("tradeoff.router")


@dataclass(frozen=True)
class ServedPolicy:
    """One loaded policy: the virtual model `name` clients ask for.

    `mtime_ns` is the source's stamp: a file's mtime, or a followed name's serving epoch.
    `epoch` is 0 for files and pinned versions (see policies/versions.py).
    """

    name: str
    path: Path | None
    policy: Policy
    baseline: str | None
    mtime_ns: int
    artifact: PolicyArtifact | None = None
    version: int | None = None
    epoch: int = 0
    source: str = ""


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class PolicyBook:
    """Loads policy files and stored policies and keeps the last good version of each."""

    def __init__(
        self,
        paths: tuple[Path, ...],
        configured: set[str],
        refs: tuple[str, ...] = (),
        store: Store | None = None,
    ) -> None:
        self.paths = paths
        self.refs = refs
        self.store = store
        self.configured = configured
        self.reload_errors = 0
        self._by_source: dict[str, ServedPolicy] = {}
        self._lock = threading.Lock()
        self.current: MappingProxyType[str, ServedPolicy] = MappingProxyType({})

    @property
    def sources(self) -> list[str]:
        return [str(p) for p in self.paths] + [f"store:{r}" for r in self.refs]

    def _check(self, where: str, artifact: PolicyArtifact, policy: Policy) -> None:
        missing = [m for m in policy.models if m not in self.configured]
        if missing:
            raise ConfigError(
                f"{where}: policy {artifact.name!r} routes to {', '.join(missing)}, not in "
                "models.yaml; add them or refit the policy"
            )
        if artifact.name in self.configured:
            raise ConfigError(
                f"{where}: policy name {artifact.name!r} is also a configured model; rename one"
            )

    def _load(self, source: str) -> ServedPolicy:
        if source.startswith("store:"):
            return self._load_stored(source)
        path = Path(source)
        mtime = _mtime(path)
        artifact = load_artifact(path)
        policy = artifact.policy()
        self._check(str(path), artifact, policy)
        return ServedPolicy(
            artifact.name,
            path,
            policy,
            artifact.baseline,
            mtime,
            artifact,
            artifact.policy_version,
            0,
            source,
        )

    def _load_stored(self, source: str) -> ServedPolicy:
        from tradeoff.policies.versions import parse_ref, resolve

        assert self.store is not None
        ref = source.removeprefix("store:")
        stored = resolve(self.store, ref)
        artifact = stored.artifact
        policy = artifact.policy()
        self._check(f"stored policy {ref}", artifact, policy)
        parsed = parse_ref(ref)
        follows = parsed is not None and parsed[1] is None
        epoch = stored.epoch if follows and stored.epoch is not None else 0
        return ServedPolicy(
            artifact.name,
            None,
            policy,
            artifact.baseline,
            epoch,
            artifact,
            stored.version,
            epoch,
            source,
        )

    def _publish(self, by_source: dict[str, ServedPolicy]) -> None:
        by_name: dict[str, ServedPolicy] = {}
        for served in by_source.values():
            other = by_name.get(served.name)
            if other is not None:
                raise ConfigError(
                    f"policies {other.source} and {served.source} are both named "
                    f"{served.name!r}; rename one"
                )
            by_name[served.name] = served
        self._by_source = by_source
        self.current = MappingProxyType(by_name)

    def load_all(self) -> None:
        """Startup: every source must load, else a one-line error saying which and why."""
        by_source: dict[str, ServedPolicy] = {}
        for path in self.paths:
            require_file(path, "policy file", "pass an existing --policy file")
        for source in self.sources:
            by_source[source] = self._load(source)
        self._publish(by_source)

    def _stamps(self) -> dict[str, int]:
        """Each source's current stamp (files: mtime; followed names: the serving epoch)."""
        stamps = {str(p): _mtime(p) for p in self.paths}
        if self.refs:
            from tradeoff.policies.versions import parse_ref, serving_all

            assert self.store is not None
            with self.store.connect() as con:
                current = serving_all(con)
            for ref in self.refs:
                parsed = parse_ref(ref)
                name, pinned = parsed if parsed else (ref, None)
                now = current.get(name)
                follows = pinned is None and now is not None
                stamps[f"store:{ref}"] = now.epoch if follows and now is not None else 0
        return stamps

    def changed(self) -> bool:
        """Whether any source differs from the loaded version (reads the store for names)."""
        return any(
            stamp != (self._by_source[s].mtime_ns if s in self._by_source else -2)
            for s, stamp in self._stamps().items()
        )

    def reload(self, *, only_changed: bool = False) -> list[str]:
        """Reload sources (all, or the changed ones); return what went wrong, if anything."""
        with self._lock:
            return self._reload(only_changed)

    def _reload(self, only_changed: bool) -> list[str]:
        by_source = dict(self._by_source)
        problems: list[str] = []
        stamps = self._stamps() if only_changed else {}
        for source in self.sources:
            old = self._by_source.get(source)
            if only_changed and old is not None and stamps.get(source) == old.mtime_ns:
                continue
            try:
                by_source[source] = self._load(source)
            except (TradeoffError, OSError, ValueError) as exc:
                problems.append(str(exc))
                if old is not None:
                    # Remember the broken stamp so the poller does not retry it every second.
                    stamp = stamps.get(source, old.mtime_ns)
                    by_source[source] = ServedPolicy(
                        old.name,
                        old.path,
                        old.policy,
                        old.baseline,
                        stamp,
                        old.artifact,
                        old.version,
                        old.epoch,
                        old.source,
                    )
        try:
            self._publish(by_source)
        except ConfigError as exc:
            problems.append(str(exc))
        for problem in problems:
            self.reload_errors += 1
            log.error("policy reload: %s; keeping the previous policy", problem)
        return problems

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "family": s.policy.family,
                "path": str(s.path) if s.path else None,
                "source": s.source,
                "version": s.version,
            }
            for s in self.current.values()
        ]
