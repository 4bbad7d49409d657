"""Client keys with limits: `tradeoff serve --keys keys.yaml`.

```yaml
keys:
  - name: team-a                # what the request log, `tradeoff status` and the dashboard show
    key: os.environ/TEAM_A_KEY  # the secret itself only ever comes from the environment
    rpm: 600                    # requests per minute (optional)
    budget_usd: 50              # spend per budget period (optional)
    budget_period: month        # hour | day | week | month, in UTC calendar terms (default month)
```

A configured key is also an accepted client key (beside `--api-key`), sent as
`Authorization: Bearer <key>` or, on Anthropic's route, `x-api-key`. Windows are fixed and
aligned to the UTC clock: a minute for `rpm`, and the budget period (a week starts on Monday).
Every period starts on a minute boundary, so one row per key and period holds both counts.
How limits are enforced is router/keys/limits.py.
"""

from __future__ import annotations

import calendar
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tradeoff.evals.errors import ConfigError, require_file
from tradeoff.evals.registry import ENV_PREFIX

__all__ = [
    "PERIODS",
    "KeyBook",
    "KeySpec",
    "load_keys",
    "minute_start",
    "period_end",
    "period_start",
    "to_nusd",
    "utcnow",
]

PERIODS = ("hour", "day", "week", "month")
_FIELDS = {"name", "key", "rpm", "budget_usd", "budget_period"}
NUSD_PER_USD = 1_000_000_000  # amounts are kept in nano-USD: integer sums are exact


def to_nusd(usd: float | None, *, up: bool = False) -> int:
    """USD as whole nano-USD (rounded, or up for a reservation); None counts as 0."""
    if usd is None or not math.isfinite(usd):
        return 0
    value = usd * NUSD_PER_USD
    return max(0, math.ceil(value - 1e-6) if up else round(value))


def utcnow() -> datetime:
    """Naive UTC, the store's timestamps' convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def minute_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def period_start(period: str, now: datetime) -> datetime:
    """The start of the budget period `now` falls in (UTC calendar)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    if period == "hour":
        return hour
    day = hour.replace(hour=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: str, start: datetime) -> datetime:
    if period == "hour":
        return start + timedelta(hours=1)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(weeks=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start + timedelta(days=days)


@dataclass(frozen=True)
class KeySpec:
    """One named client key and its limits (None: no limit)."""

    name: str
    secret: str = field(repr=False)
    rpm: int | None = None
    budget_usd: float | None = None
    budget_period: str = "month"

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.budget_usd is not None

    @property
    def budget_nusd(self) -> int | None:
        return None if self.budget_usd is None else to_nusd(self.budget_usd)


class KeyBook:
    """The configured keys, by name (router/keys/auth.py finds them by the secret presented)."""

    def __init__(self, keys: list[KeySpec]) -> None:
        self.keys = {k.name: k for k in keys}

    def __len__(self) -> int:
        return len(self.keys)


def _number(where: str, name: str, value: Any, *, whole: bool) -> Any:
    if value is None:
        return None
    ok = not isinstance(value, bool) and isinstance(value, int | float) and value > 0
    if whole:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "a whole number > 0" if whole else "a number > 0"
        raise ConfigError(
            f"{where}: key {name!r}: {'rpm' if whole else 'budget_usd'} must be {kind}"
        )
    return int(value) if whole else float(value)


def _entry(raw: Any, where: str, env: Mapping[str, str]) -> KeySpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each key must be a mapping with name and key")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: a key has no name; give each one `name: ...`")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: key {name!r} has unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    ref = raw.get("key")
    if not (isinstance(ref, str) and ref.startswith(ENV_PREFIX) and len(ref) > len(ENV_PREFIX)):
        raise ConfigError(
            f"{where}: key {name!r}: write `key: os.environ/NAME` and export NAME (a secret "
            "never goes in the file)"
        )
    var = ref[len(ENV_PREFIX) :]
    secret = (env.get(var) or "").strip()
    if not secret:
        raise ConfigError(f"{where}: key {name!r} needs environment variable {var}; export it")
    period = raw.get("budget_period", "month")
    if period not in PERIODS:
        raise ConfigError(
            f"{where}: key {name!r}: budget_period {period!r}; use one of {', '.join(PERIODS)}"
        )
    return KeySpec(
        name=name.strip(),
        secret=secret,
        rpm=_number(where, name, raw.get("rpm"), whole=True),
        budget_usd=_number(where, name, raw.get("budget_usd"), whole=False),
        budget_period=period,
    )


def load_keys(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> KeyBook:
    """Read keys.yaml (a `keys:` list, or a bare list); ConfigError saying what to fix."""
    file = require_file(path, "keys file", "pass an existing --keys file")
    where = str(file)
    try:
        doc = yaml.safe_load(Path(file).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where} is not valid YAML ({type(exc).__name__}); fix it") from None
    entries = doc.get("keys") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: expected a `keys:` list of {{name, key, rpm, budget_usd}}")
    keys = [_entry(raw, where, os.environ if env is None else env) for raw in entries]
    seen: dict[str, str] = {}
    for key in keys:
        if key.name in seen:
            raise ConfigError(f"{where}: key name {key.name!r} is listed twice")
        if key.secret in seen.values():
            raise ConfigError(f"{where}: keys {key.name!r} and another share one secret")
        seen[key.name] = key.secret
    return KeyBook(keys)
