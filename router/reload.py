"""The policies being served, reloaded atomically when a file changes or on SIGHUP.

`PolicyBook.current` is an immutable mapping swapped in one assignment, so a request sees either
the old set or the new one, never half of each, and nothing in flight is dropped. A file that
fails to load (bad JSON, unknown family, a model not configured) keeps its previous policy and
the reason is logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from evals.errors import ConfigError, TradeoffError, require_file
from policies.artifact import load_artifact
from policies.base import Policy

log = logging.getLogger("tradeoff.router")


@dataclass(frozen=True)
class ServedPolicy:
    """One loaded policy file: the virtual model `name` clients ask for."""

    name: str
    path: Path
    policy: Policy
    baseline: str | None
    mtime_ns: int


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class PolicyBook:
    """Loads policy files and keeps the last good version of each."""

    def __init__(self, paths: tuple[Path, ...], configured: set[str]) -> None:
        self.paths = paths
        self.configured = configured
        self.reload_errors = 0
        self._by_path: dict[Path, ServedPolicy] = {}
        self.current: MappingProxyType[str, ServedPolicy] = MappingProxyType({})

    def _load(self, path: Path) -> ServedPolicy:
        mtime = _mtime(path)
        artifact = load_artifact(path)
        policy = artifact.policy()
        missing = [m for m in policy.models if m not in self.configured]
        if missing:
            raise ConfigError(
                f"{path}: policy {artifact.name!r} routes to {', '.join(missing)}, not in "
                "models.yaml; add them or refit the policy"
            )
        if artifact.name in self.configured:
            raise ConfigError(
                f"{path}: policy name {artifact.name!r} is also a configured model; rename one"
            )
        return ServedPolicy(artifact.name, path, policy, artifact.baseline, mtime)

    def _publish(self, by_path: dict[Path, ServedPolicy]) -> None:
        by_name: dict[str, ServedPolicy] = {}
        for served in by_path.values():
            other = by_name.get(served.name)
            if other is not None:
                raise ConfigError(
                    f"policies {other.path} and {served.path} are both named {served.name!r}; "
                    "rename one"
                )
            by_name[served.name] = served
        self._by_path = by_path
        self.current = MappingProxyType(by_name)

    def load_all(self) -> None:
        """Startup: every file must load, else a one-line error saying which and why."""
        by_path: dict[Path, ServedPolicy] = {}
        for path in self.paths:
            require_file(path, "policy file", "pass an existing --policy file")
            by_path[path] = self._load(path)
        self._publish(by_path)

    def changed(self) -> bool:
        """Whether any file's mtime differs from the loaded version's."""
        return any(
            _mtime(path) != (self._by_path[path].mtime_ns if path in self._by_path else -2)
            for path in self.paths
        )

    def reload(self, *, only_changed: bool = False) -> list[str]:
        """Reload files (all, or those whose mtime changed); return what went wrong, if anything."""
        by_path = dict(self._by_path)
        problems: list[str] = []
        for path in self.paths:
            old = self._by_path.get(path)
            if only_changed and old is not None and _mtime(path) == old.mtime_ns:
                continue
            try:
                by_path[path] = self._load(path)
            except (TradeoffError, OSError, ValueError) as exc:
                problems.append(str(exc))
                if old is not None:
                    # Remember the broken mtime so the poller does not retry it every second.
                    by_path[path] = ServedPolicy(
                        old.name, old.path, old.policy, old.baseline, _mtime(path)
                    )
        try:
            self._publish(by_path)
        except ConfigError as exc:
            problems.append(str(exc))
        for problem in problems:
            self.reload_errors += 1
            log.error("policy reload: %s; keeping the previous policy", problem)
        return problems

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "family": s.policy.family, "path": str(s.path)}
            for s in self.current.values()
        ]
