"""From a decision to a running proxy: the exact `tradeoff serve` command for a stored policy,
its policy file, and a models.yaml stub naming the models it routes to (and its baseline).

Pure text builders (tested without Streamlit) and `serve_panel`, which Policy detail and the fit
result on Tradeoffs both show.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from tradeoff.policies.artifact import artifact_from_dict

__all__ = ["models_yaml", "policy_file", "serve_command", "serve_panel", "served_ref"]

# litellm provider prefix -> the environment variable its key is usually read from.
_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "vertex_ai": "VERTEXAI_CREDENTIALS",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
}
FILL_IN = "FILL-IN"


def served_ref(name: str, version: int | None, serving_version: int | None) -> str:
    """What `--policy` takes: the name when this version is the serving one (a proxy then
    follows promotions and rollbacks), else `NAME@VERSION` (exactly this version)."""
    if version is None or version == serving_version:
        return name
    return f"{name}@{version}"


def serve_command(ref: str, store: str) -> str:
    """The exact command: the stored policy by name, on this store, with the models file."""
    return shlex.join(
        ["tradeoff", "serve", "--policy", ref, "--config", "models.yaml", "--db", store]
    )


def policy_file(artifact_json: str, version: int | None) -> tuple[str, str]:
    """(file name, content) of the policy file: the artifact with its policy version."""
    artifact = artifact_from_dict(json.loads(artifact_json))
    if version is not None:
        artifact = replace(artifact, policy_version=version)
    stem = artifact.name if version is None else f"{artifact.name}-v{version}"
    return f"{stem}.json", artifact.to_json() + "\n"


def models_yaml(models: list[str], baseline: str | None, known: pd.DataFrame) -> str:
    """A models.yaml for the policy: one entry per model it may route to, and the baseline (the
    proxy prices each request's saving with it, and shadow-grades against it). What the store
    knows (litellm string, api_base, tier, the prices the fit used) is filled in; the rest is
    marked FILL-IN."""
    rows = {r["name"]: r for r in known.to_dict("records")}
    names = list(dict.fromkeys([*models, *([baseline] if baseline else [])]))
    lines = [
        "# models.yaml for `tradeoff serve` (LiteLLM's model_list shape); keys only as",
        "# os.environ/NAME references. Replace every FILL-IN before serving.",
        "model_list:",
    ]
    for name in names:
        row = rows.get(name, {})
        why = "  # the baseline: prices each request's saving" if name == baseline else ""
        if name == baseline and name in models:
            why = "  # also the baseline"
        lines += [f"  - model_name: {_scalar(name)}{why}", "    litellm_params:"]
        litellm_model = row.get("litellm_model")
        if _present(litellm_model):
            lines.append(f"      model: {_scalar(litellm_model)}")
        else:
            lines.append(
                f"      model: {FILL_IN}/{_plain(name)}  # the litellm string, provider/model"
            )
        api_base = row.get("api_base")
        if _present(api_base):
            lines.append(f"      api_base: {_scalar(api_base)}")
        provider = str(litellm_model).split("/", 1)[0] if _present(litellm_model) else ""
        env = _KEY_ENV.get(provider)
        if env:
            lines.append(f"      api_key: os.environ/{env}")
        elif not _present(api_base):
            lines.append(
                f"      api_key: os.environ/{FILL_IN}_API_KEY  # if the provider needs one"
            )
        for key in ("input_cost_per_token", "output_cost_per_token"):
            if _present(row.get(key)):
                lines.append(f"      {key}: {float(row[key]):.6g}  # the price the fit used")
        tier = row.get("tier")
        lines.append(f"    tier: {_scalar(tier) if _present(tier) else 'frontier'}")
        if _present(row.get("gpu_hourly_usd")):
            lines.append(f"    gpu_hourly_usd: {float(row['gpu_hourly_usd']):g}")
    return "\n".join(lines) + "\n"


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and value != ""


def _plain(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in name)


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./:-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(value: Any) -> str:
    """A YAML scalar: plain when YAML reads it back as this text, else JSON-quoted (JSON strings
    are YAML)."""
    text = str(value)
    plain = _PLAIN.fullmatch(text) and ": " not in text and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text)


def serve_panel(
    *,
    name: str,
    version: int | None,
    serving_version: int | None,
    artifact_json: str,
    models: list[str],
    baseline: str | None,
    known_models: pd.DataFrame,
    store: str,
    key: str,
) -> None:
    """The serve command, the policy file and the models.yaml stub, side by side."""
    ref = served_ref(name, version, serving_version)
    with st.container(border=True, key=f"serve_{key}"):
        st.markdown("**Serve it**")
        st.code(serve_command(ref, store), language="bash")
        if ref != name:
            st.caption(
                f"Version {version} is not the serving one, so the command names it: "
                f"`--policy {ref}` serves exactly this version. `--policy {name}` would serve "
                f"version {serving_version} and follow later promotions."
                if serving_version
                else f"No version of {name} is serving; `--policy {ref}` serves this one."
            )
        else:
            st.caption(
                f"`--policy {name}` serves the serving version ({version}) and follows "
                f'promotions and rollbacks. Clients send `model="{name}"` to the proxy.'
            )
        if "@" in store or store.startswith("postgres"):
            st.caption(
                "The store URL is shown without its password: set PGPASSWORD (or ~/.pgpass) "
                "where the proxy runs."
            )
        file_name, content = policy_file(artifact_json, version)
        stub = models_yaml(models, baseline, known_models)
        left, right = st.columns(2)
        left.download_button(
            f"Download the policy file ({file_name})",
            content,
            file_name=file_name,
            mime="application/json",
            key=f"download_policy_{key}",
            help=f"Or serve the file: tradeoff serve --policy {file_name} --config models.yaml",
        )
        right.download_button(
            "Download a models.yaml stub",
            stub,
            file_name="models.yaml",
            mime="application/yaml",
            key=f"download_models_{key}",
        )
        count = len(set(models) | ({baseline} if baseline else set()))
        with st.expander(f"models.yaml stub ({count} model{'s' if count != 1 else ''})"):
            st.code(stub, language="yaml")
