"""Everything `create_app` needs, in one typed object (the CLI builds it from options and env)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tradeoff.evals.errors import require_file

KEYS_ENV = "TRADEOFF_API_KEYS"
ADMIN_KEYS_ENV = "TRADEOFF_ADMIN_KEYS"


@dataclass(frozen=True)
class LoopSettings:
    """The loop's options (`tradeoff serve --shadow ...`); all off by default."""

    shadow_rate: float = 0.0  # share of policy-routed requests re-sent to the baseline
    shadow_grader: str = "agreement"
    shadow_budget_usd: float | None = None  # None: unlimited (per proxy run)
    shadow_concurrency: int = 4  # shadow calls in flight at once
    shadow_queue: int = 1000  # sampled requests waiting; more are dropped (and counted)
    shadow_timeout_s: float = 120.0
    on_violation: str = "serve"  # serve | baseline
    refit_every_s: float | None = None
    write_every_s: float = 2.0  # how often graded pairs are written to the store
    refresh_s: float = 1.0  # how often the monitors read new pairs (every replica's) from it
    seed: int | None = None  # the sampling RNG's seed (tests)

    @property
    def shadowing(self) -> bool:
        return self.shadow_rate > 0


@dataclass(frozen=True)
class Settings:
    """The proxy's configuration. Defaults suit a local deployment."""

    policy_paths: tuple[Path, ...] = ()
    stored_policies: tuple[str, ...] = ()  # NAME (follows the serving version) or NAME@VERSION
    config_path: Path | None = None  # models.yaml; None: $TRADEOFF_CONFIG or ./models.yaml
    db_path: str | Path | None = None  # the store (file or URL); None: $TRADEOFF_DB or default
    api_keys: frozenset[str] = frozenset()  # client keys; none here nor anywhere: no auth
    admin_keys: frozenset[str] = frozenset()  # also /metrics, /tradeoff/status, any feedback
    log_prompts: bool = False
    timeout_s: float = 120.0  # the whole request, streaming included, never runs longer
    max_body_bytes: int = 1 << 20
    body_timeout_s: float = 30.0  # a client that has not sent its whole body by then gets 408
    cors_origins: tuple[str, ...] = ()  # CORS stays off unless origins are named
    retries: int = 2  # extra tries of the last model in a plan on 429/5xx/timeout
    cooldown_s: float = 10.0  # a failing upstream is tried last for this long
    reload_interval_s: float = 1.0  # how often policy files' mtimes are polled
    log_flush_s: float = 0.25
    log_batch_rows: int = 500
    drain_timeout_s: float = 30.0  # at shutdown, in-flight requests get this long, then are cut
    log_drain_s: float = 5.0  # at shutdown, how long to wait for the store before leaving rows
    # in the spool (they are written at the next start)
    spool: bool = True  # False: rows wait in memory only (the benchmark's baseline)
    session_ttl_s: float = 3600.0  # a conversation's model is kept this long after its last
    # turn (router/sessions.py); 0 turns sessions off
    keys_path: Path | None = None  # `--keys keys.yaml`: named client keys and their limits
    # Offered built-in tools make a request native-only instead of being removed
    # (router/protocols/translation.py).
    strict_translation: bool = False
    workers: int = 1  # processes serving (router/replicas/workers.py); each builds its own state
    loop: LoopSettings = field(default_factory=LoopSettings)


def load_api_keys(
    keys: tuple[str, ...] = (), key_file: str | os.PathLike[str] | None = None
) -> frozenset[str]:
    """Keys from `--api-key` options, `$TRADEOFF_API_KEYS` (comma-separated) and a key file."""
    found = _with_env(keys, KEYS_ENV)
    if key_file is not None:
        path = require_file(key_file, "API key file", "pass an existing --api-key-file")
        for line in path.read_text().splitlines():
            if not line.strip().startswith("#"):
                found.append(line.strip())
    return frozenset(k for k in found if k)


def load_admin_keys(keys: tuple[str, ...] = ()) -> frozenset[str]:
    """Keys from `--admin-key` options and `$TRADEOFF_ADMIN_KEYS` (comma-separated)."""
    return frozenset(k for k in _with_env(keys, ADMIN_KEYS_ENV) if k)


def _with_env(keys: tuple[str, ...], env: str) -> list[str]:
    found = [k.strip() for k in keys]
    return found + [k.strip() for k in os.environ.get(env, "").split(",")]  # "a, b": a and b
