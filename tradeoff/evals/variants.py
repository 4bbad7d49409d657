"""Candidate variants: one model at other request settings, measured, priced and routed as a
candidate of its own.

```yaml
- model_name: o3-mini
  litellm_params: {model: openai/o3-mini}
  params: {max_completion_tokens: 4000}      # request fields sent with every call (optional)
  variants:
    - name: low                              # the candidate `o3-mini:low`
      params: {reasoning_effort: low}
    - name: terse
      system_prompt: "Give only the final answer."
      litellm_params: {output_cost_per_token: 4.4e-06}   # optional overrides (prices, api_base)
      capabilities: {max_output_tokens: 4000}            # optional, over the base's
```

A variant is an ordinary registry entry named `<model_name>:<name>` (OpenRouter's `model:variant`
convention): `tradeoff eval --models o3-mini,o3-mini:low`, policies and the proxy's `model` field
all use that name. Its `params` (merged over the base's) and `system_prompt` (prepended as a
system message) reach the upstream through the shared adapter on both of its paths
(`evals.upstream`), so what the eval measured is what the proxy sends. They override the same
fields of a request: the variant is defined by them. Outcomes are keyed by them too
(`identity_params`), so editing a variant's settings measures it afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeoff.evals.errors import ConfigError

if TYPE_CHECKING:
    from tradeoff.evals.registry import ModelEntry

VARIANT_KEYS = (
    "name",
    "params",
    "system_prompt",
    "litellm_params",
    "tier",
    "capabilities",
    "refine",
    "verifier",
    "escalate",
)
# Request fields the call itself owns: a variant may not set them.
RESERVED_PARAMS = frozenset({"model", "messages", "stream", "stream_options"})
SEPARATOR = ":"


def request_params(entry: ModelEntry) -> dict[str, Any]:
    """Request fields the entry sends with every call (`params` in models.yaml)."""
    return dict(entry.extra.get("params") or {})


def system_prompt(entry: ModelEntry) -> str | None:
    value = entry.extra.get("system_prompt")
    return str(value) if value else None


def identity_params(entry: ModelEntry) -> dict[str, Any]:
    """What, besides the run's own parameters, defines this entry's answers (for params_hash);
    empty for a plain entry, so its outcomes keep their key."""
    out: dict[str, Any] = {}
    if request_params(entry):
        out["entry_params"] = request_params(entry)
    if system_prompt(entry):
        out["system_prompt"] = system_prompt(entry)
    if entry.extra.get("refine"):
        out["refine"] = entry.extra["refine"]
    return out


def check_refine(variant: dict[str, Any], at: str) -> dict[str, Any] | None:
    """A variant's `refine: {rounds: N}` (N >= 1), `verifier: NAME` (a reference-free grader)
    and `escalate: MODEL`, as one mapping (evals/refine.py), or None for a variant that answers
    once. That MODEL exists is checked once every entry is read (`check_escalations`)."""
    refine, verifier = variant.get("refine"), variant.get("verifier")
    escalate = variant.get("escalate")
    if refine is None:
        for key, value in (("verifier", verifier), ("escalate", escalate)):
            if value is not None:
                raise ConfigError(f"{at}: {key} is a refine option; add refine: {{rounds: 1}}")
        return None
    if escalate is not None and (not isinstance(escalate, str) or not escalate):
        raise ConfigError(f"{at}: escalate must name a model of this file")
    if not isinstance(refine, dict) or set(refine) - {"rounds"}:
        raise ConfigError(f"{at}: refine must be a mapping {{rounds: N}}")
    rounds = refine.get("rounds", 1)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 10:
        raise ConfigError(f"{at}: refine.rounds must be a whole number from 1 to 10")
    if verifier is not None:
        from tradeoff.evals.graders import get_grader

        if not isinstance(verifier, str):
            raise ConfigError(f"{at}: verifier must be a grader name")
        try:
            grader = get_grader(verifier)
        except Exception as exc:
            raise ConfigError(f"{at}: verifier: {exc}") from None
        if grader.needs_reference:
            raise ConfigError(
                f"{at}: verifier {verifier!r} needs a reference answer; name a reference-free "
                "grader (json_valid, json_schema, prompt_tests, ...) or module:function"
            )
    out = {"rounds": rounds, "verifier": verifier}
    if escalate is not None:  # absent, not None: a variant without it keeps its params hash
        out["escalate"] = escalate
    return out


def check_escalations(entries: list[ModelEntry], where: str) -> None:
    """Every refine variant's `escalate:` names another model of the file that answers once."""
    by_name = {e.name: e for e in entries}
    for entry in entries:
        refine = entry.extra.get("refine")
        target = refine.get("escalate") if isinstance(refine, dict) else None
        if target is None:
            continue
        if target not in by_name:
            raise ConfigError(
                f"{where}: model {entry.name!r}: escalate names {target!r}, which is not "
                f"configured (models: {', '.join(by_name)})"
            )
        if target == entry.name or by_name[target].extra.get("refine"):
            raise ConfigError(
                f"{where}: model {entry.name!r}: escalate must name a model that answers once, "
                f"not the refine variant {target!r}"
            )


def check_call_fields(raw: dict[str, Any], where: str) -> None:
    """`params` must be a mapping of request fields, `system_prompt` a string."""
    name = raw.get("model_name")
    params = raw.get("params")
    if params is not None:
        if not isinstance(params, dict):
            raise ConfigError(
                f"{where}: model {name!r}: params must be a mapping of request fields"
            )
        reserved = sorted(RESERVED_PARAMS & set(params))
        if reserved:
            raise ConfigError(
                f"{where}: model {name!r}: params may not set {', '.join(reserved)} "
                "(the call sets them)"
            )
    prompt = raw.get("system_prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise ConfigError(f"{where}: model {name!r}: system_prompt must be a string")


def expand(raw: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The raw entry followed by one raw entry per variant (checked; parse each after)."""
    variants = raw.get("variants")
    base = {k: v for k, v in raw.items() if k != "variants"}
    check_call_fields(base, where)
    if variants is None:
        return [raw]
    name = raw.get("model_name")
    if not isinstance(variants, list):
        raise ConfigError(f"{where}: model {name!r}: variants must be a list")
    out = [raw]  # the base keeps `variants`, so writing the file back keeps them
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        at = f"{where}.variants[{i}]"
        if not isinstance(variant, dict):
            raise ConfigError(f"{at}: each variant must be a mapping with a name")
        unknown = sorted(set(variant) - set(VARIANT_KEYS))
        if unknown:
            raise ConfigError(
                f"{at}: unknown key {unknown[0]!r}; a variant may set {', '.join(VARIANT_KEYS)}"
            )
        label = variant.get("name")
        if not isinstance(label, str) or not label or any(c in label for c in ":, "):
            raise ConfigError(f"{at}: name must be a word without ':', ',' or spaces")
        if label in seen:
            raise ConfigError(f"{at}: variant {label!r} of model {name!r} is listed twice")
        seen.add(label)
        overrides = variant.get("litellm_params") or {}
        own_params = variant.get("params") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{at}: litellm_params must be a mapping")
        if not isinstance(own_params, dict):
            raise ConfigError(f"{at}: params must be a mapping of request fields")
        derived = dict(base)
        derived["model_name"] = f"{name}{SEPARATOR}{label}"
        derived["litellm_params"] = {**(base.get("litellm_params") or {}), **overrides}
        if variant.get("tier") is not None:
            derived["tier"] = variant["tier"]
        own_capabilities = variant.get("capabilities")
        if own_capabilities is not None:
            if not isinstance(own_capabilities, dict):
                raise ConfigError(f"{at}: capabilities must be a mapping")
            derived["capabilities"] = {**(base.get("capabilities") or {}), **own_capabilities}
        derived["params"] = {**(base.get("params") or {}), **own_params}
        if "system_prompt" in variant:
            derived["system_prompt"] = variant["system_prompt"]
        refine = check_refine(variant, at)
        if refine is not None:
            derived["refine"] = refine
        derived["variant_of"] = name
        check_call_fields(derived, at)
        out.append(derived)
    return out
