"""The model registry, `models.yaml`: LiteLLM's `model_list` shape plus tradeoff's own fields.

```yaml
model_list:
  - model_name: gpt-4o                       # the name used everywhere in tradeoff
    litellm_params:
      model: openai/gpt-4o                   # litellm model string
      api_key: os.environ/OPENAI_API_KEY     # keys only as env references
      # input_cost_per_token: 2.5e-06        # optional price override (litellm's keys)
      # output_cost_per_token: 1.0e-05
      # timeout: 60                          # seconds one call may take (LiteLLM's key)
    tier: frontier                           # frontier | local | specialized | baseline | human
    # api: responses                         # the upstream also takes the Responses API as is
    # capabilities: {tools: true, context_window: 128000}   # evals/capabilities.py
  - model_name: llama-local
    litellm_params: {model: hosted_vllm/llama, api_base: "http://127.0.0.1:8000/v1"}
    tier: local
    gpu_hourly_usd: 2.0                      # self-hosted: price derived from throughput
  - model_name: o3-mini
    litellm_params: {model: openai/o3-mini}
    variants:                                # also the candidate `o3-mini:low` (evals/variants.py)
      - {name: low, params: {reasoning_effort: low}}
  - model_name: reviewer                     # a person reviewing answers (evals/reviewers.py)
    tier: human
    review_cost_usd: 0.5
```

Resolved keys live only in memory for the duration of a call; they never reach the store, a log
line or an error message (errors name the variable, not the value).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tradeoff.evals.capabilities import check_capabilities
from tradeoff.evals.errors import ConfigError, UnknownModelError, require_file
from tradeoff.evals.reviewers import HUMAN_TIER, PLACEHOLDER_PREFIX, parse_reviewer
from tradeoff.evals.variants import check_escalations, expand

CONFIG_ENV = "TRADEOFF_CONFIG"
DEFAULT_CONFIG = "models.yaml"
TIERS = ("frontier", "local", "specialized", "baseline", HUMAN_TIER)
ENV_PREFIX = "os.environ/"
# Keys that must be env references, never literal secrets in the file.
PRICE_KEYS = ("input_cost_per_token", "output_cost_per_token")
# Prompt-cache prices (LiteLLM's keys): reads of cached input tokens, and writes to the cache.
CACHE_PRICE_KEYS = ("cache_read_input_token_cost", "cache_creation_input_token_cost")
# Per-model limits, at the entry's top level or in litellm_params (0 or absent: no limit).
LIMIT_KEYS = ("rpm", "tpm", "max_concurrency", "max_parallel_requests")
SECRET_KEYS = ("api_key", "aws_secret_access_key", "aws_access_key_id", "vertex_credentials")
# `api`: the client protocols an upstream takes as is, beside chat completions (router/protocols).
APIS = ("chat", "responses", "anthropic")


def resolve_config_path(config: str | os.PathLike[str] | None = None) -> Path:
    """`--config` wins, then `$TRADEOFF_CONFIG`, then `./models.yaml`."""
    return Path(config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


@dataclass(frozen=True)
class ModelEntry:
    """One configured model. `litellm_params` keeps env references unresolved."""

    name: str
    litellm_params: dict[str, Any]
    tier: str = "frontier"
    gpu_hourly_usd: float | None = None
    # Anything else under the entry (rpm, max_concurrency, calibration, ...), kept verbatim.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def litellm_model(self) -> str:
        return str(self.litellm_params["model"])

    @property
    def api_base(self) -> str | None:
        base = self.litellm_params.get("api_base")
        return str(base) if base else None

    @property
    def price_override(self) -> tuple[float, float] | None:
        """USD per (input, output) token if the entry sets litellm's override keys."""
        p = self.litellm_params
        if "input_cost_per_token" in p or "output_cost_per_token" in p:
            return float(p.get("input_cost_per_token", 0.0)), float(
                p.get("output_cost_per_token", 0.0)
            )
        return None

    def env_refs(self) -> dict[str, str]:
        """{param: ENV_NAME} for every `os.environ/NAME` value."""
        return {
            k: v[len(ENV_PREFIX) :]
            for k, v in self.litellm_params.items()
            if isinstance(v, str) and v.startswith(ENV_PREFIX)
        }

    def resolved_params(self) -> dict[str, Any]:
        """litellm_params with env references replaced by their values (for the call only)."""
        params = dict(self.litellm_params)
        for key, var in self.env_refs().items():
            value = os.environ.get(var)
            if not value:
                raise ConfigError(
                    f"model {self.name!r} needs environment variable {var} (for {key}); "
                    f"export {var}=... and retry"
                )
            params[key] = value
        return params

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_name": self.name, "litellm_params": dict(self.litellm_params)}
        out["tier"] = self.tier
        if self.gpu_hourly_usd is not None:
            out["gpu_hourly_usd"] = self.gpu_hourly_usd
        out.update(self.extra)
        return out


def _non_negative(value: Any) -> bool:
    # YAML reads `1e-06` (no dot) as a string: accept any text that is a number.
    if isinstance(value, bool):
        return False
    try:
        return float(value) >= 0
    except (TypeError, ValueError):
        return False


def parse_entry(raw: Any, where: str) -> ModelEntry:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each model_list entry must be a mapping")
    name = raw.get("model_name")
    params = raw.get("litellm_params")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: model_name is missing")
    if raw.get("tier") == HUMAN_TIER:
        # A person is never called: no upstream, a placeholder model string (evals/reviewers.py).
        parse_reviewer(name, raw, where)
        params = {
            "model": PLACEHOLDER_PREFIX + name,
            **(params if isinstance(params, dict) else {}),
        }
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        raise ConfigError(f"{where}: model {name!r} needs litellm_params.model")
    for key in SECRET_KEYS:
        value = params.get(key)
        if value is not None and not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
            raise ConfigError(
                f"{where}: model {name!r} has a literal {key}; write it as os.environ/NAME "
                "and export NAME instead"
            )
    tier = raw.get("tier", "frontier")
    if tier not in TIERS:
        raise ConfigError(
            f"{where}: model {name!r} has tier {tier!r}; use one of {', '.join(TIERS)}"
        )
    gpu = raw.get("gpu_hourly_usd")
    numbers = [("gpu_hourly_usd", gpu)]
    numbers += [(k, params.get(k)) for k in PRICE_KEYS + CACHE_PRICE_KEYS]
    numbers += [(k, v) for k in LIMIT_KEYS for v in (raw.get(k), params.get(k))]
    for key, value in numbers:
        if value is not None and not _non_negative(value):
            raise ConfigError(f"{where}: model {name!r}: {key} must be a number >= 0")
    check_capabilities(raw.get("capabilities"), f"{where}: model {name!r}")
    api = raw.get("api")
    if api is not None and api not in APIS:
        raise ConfigError(f"{where}: model {name!r} has api {api!r}; use one of {', '.join(APIS)}")
    timeout = params.get("timeout")  # LiteLLM's key: seconds one call may take
    if timeout is not None and not (_non_negative(timeout) and float(timeout) > 0):
        raise ConfigError(f"{where}: model {name!r}: timeout must be a number > 0 (seconds)")
    extra = {
        k: v
        for k, v in raw.items()
        if k not in ("model_name", "litellm_params", "tier", "gpu_hourly_usd")
    }
    return ModelEntry(
        name=name,
        litellm_params=dict(params),
        tier=tier,
        gpu_hourly_usd=float(gpu) if gpu is not None else None,  # validated above
        extra=extra,
    )


class Registry:
    """The models of one models.yaml, by name, in file order."""

    def __init__(self, entries: list[ModelEntry], path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, ModelEntry] = {}
        for entry in entries:
            if entry.name in self.entries:
                raise ConfigError(f"{path}: model {entry.name!r} is listed twice")
            self.entries[entry.name] = entry

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(self.entries) or "none"
            raise UnknownModelError(
                f"model {name!r} is not in {self.path or 'the registry'} (configured: {known})"
            ) from None

    def names(self) -> list[str]:
        return list(self.entries)


def load_registry(path: str | os.PathLike[str] | None = None, *, required: bool = True) -> Registry:
    """Read models.yaml. With required=False a missing file gives an empty registry."""
    p = resolve_config_path(path)
    if not p.exists() and not required:
        return Registry([], p)
    require_file(p, "model registry", "create it or pass --config PATH")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    models = doc.get("model_list") if isinstance(doc, dict) else None
    if models is None:
        models = []
    if not isinstance(models, list):
        raise ConfigError(f"{p}: model_list must be a list")
    entries = []
    for i, raw in enumerate(models):
        where = f"{p}: model_list[{i}]"
        entries.append(parse_entry(raw, where))
        # Variants (evals/variants.py) are entries of their own, named `<model_name>:<name>`.
        variants = expand(raw, where)[1:]
        entries += [parse_entry(v, f"{where}.variants[{j}]") for j, v in enumerate(variants)]
    check_escalations(entries, str(p))
    return Registry(entries, p)


def upsert_model(path: str | os.PathLike[str] | None, entry: ModelEntry) -> Path:
    """Add or replace one entry in models.yaml, keeping the others and any other top-level keys."""
    p = resolve_config_path(path)
    doc: dict[str, Any] = {}
    if p.exists():
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping with model_list")
        doc = loaded
    models = [m for m in doc.get("model_list") or [] if m.get("model_name") != entry.name]
    models.append(entry.to_dict())
    doc["model_list"] = models
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(p)  # atomic: a crash never leaves a half-written registry
    return p
