"""From a stored policy to a running proxy: the command, the policy file, the models.yaml stub."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd
import pytest

from tradeoff.dashboard.serving import models_yaml, policy_file, serve_command, served_ref
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.registry import load_registry
from tradeoff.policies.artifact import load_artifact

ARTIFACT = (
    '{"version": 1, "name": "support", "family": "task_table", "models": ["cheap", "local"], '
    '"params": {"table": {"math": "local"}, "default": "cheap"}, "baseline": "gpt-4o"}'
)
KNOWN = pd.DataFrame(
    [
        {"name": "cheap", "litellm_model": "openai/gpt-4o-mini", "api_base": None,
         "tier": "frontier", "input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
         "gpu_hourly_usd": None},
        {"name": "local", "litellm_model": "hosted_vllm/llama", "api_base": "http://127.0.0.1:8000/v1",
         "tier": "local", "input_cost_per_token": None, "output_cost_per_token": None,
         "gpu_hourly_usd": 2.0},
    ]
)  # fmt: skip


def test_the_command_names_the_serving_version_by_name_and_others_exactly() -> None:
    assert served_ref("support", 3, 3) == "support"
    assert served_ref("support", 2, 3) == "support@2"
    assert served_ref("hand-written", None, None) == "hand-written"
    command = serve_command("support@2", "/data/my store.duckdb")
    assert shlex.split(command) == [
        "tradeoff", "serve", "--policy", "support@2", "--config", "models.yaml",
        "--db", "/data/my store.duckdb",
    ]  # fmt: skip


def test_the_policy_file_loads_and_keeps_its_version(tmp_path: Path) -> None:
    name, content = policy_file(ARTIFACT, 3)
    assert name == "support-v3.json"
    path = tmp_path / name
    path.write_text(content)
    artifact = load_artifact(path)
    assert (artifact.name, artifact.policy_version, artifact.models) == (
        "support",
        3,
        ["cheap", "local"],
    )


def test_the_stub_lists_every_model_and_the_baseline_and_loads_once_filled_in(
    tmp_path: Path,
) -> None:
    stub = models_yaml(["cheap", "local"], "gpt-4o", KNOWN)
    path = tmp_path / "models.yaml"
    path.write_text(stub)
    # The store does not know the baseline's litellm string: the stub says to fill it in.
    assert "FILL-IN/gpt-4o" in stub
    registry = load_registry(path)
    assert registry.names() == ["cheap", "local", "gpt-4o"]
    cheap, local, _ = registry
    assert cheap.litellm_params["api_key"] == "os.environ/OPENAI_API_KEY"
    assert cheap.price_override == (1.5e-07, 6e-07)  # the prices the fit used
    assert (local.api_base, local.tier, local.gpu_hourly_usd) == (
        "http://127.0.0.1:8000/v1", "local", 2.0,
    )  # fmt: skip
    assert "api_key" not in local.litellm_params


def test_names_that_yaml_would_misread_are_quoted(tmp_path: Path) -> None:
    stub = models_yaml(["yes", "1.5-pro", "a: b"], None, pd.DataFrame(columns=KNOWN.columns))
    path = tmp_path / "models.yaml"
    path.write_text(stub)
    assert load_registry(path).names() == ["yes", "1.5-pro", "a: b"]
    with pytest.raises(ConfigError):
        path.write_text("model_list: [{model_name: x}]")
        load_registry(path)
