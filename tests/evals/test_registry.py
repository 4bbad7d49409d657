"""models.yaml: LiteLLM's model_list shape, env-reference keys, clear one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tradeoff.evals.errors import ConfigError, MissingFileError
from tradeoff.evals.registry import ModelEntry, load_registry, parse_entry, upsert_model


def write(path: Path, models: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"model_list": models}))
    return path


def test_reads_entries_in_order_with_our_fields(tmp_path: Path) -> None:
    config = write(
        tmp_path / "models.yaml",
        [
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o",
             "api_key": "os.environ/OPENAI_KEY_X"}, "tier": "frontier", "rpm": 60},
            {"model_name": "local", "litellm_params": {"model": "hosted_vllm/m",
             "api_base": "http://127.0.0.1:8000/v1"}, "tier": "local", "gpu_hourly_usd": 2},
        ],
    )  # fmt: skip
    registry = load_registry(config)
    assert registry.names() == ["gpt", "local"] and len(registry) == 2 and "gpt" in registry
    gpt, local = registry.get("gpt"), registry.get("local")
    assert gpt.env_refs() == {"api_key": "OPENAI_KEY_X"} and gpt.extra == {"rpm": 60}
    assert local.api_base == "http://127.0.0.1:8000/v1" and local.gpu_hourly_usd == 2.0
    with pytest.raises(ConfigError, match=r"'nope' is not in .*configured: gpt, local"):
        registry.get("nope")


def test_a_missing_key_names_the_variable_and_never_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = ModelEntry("gpt", {"model": "openai/gpt-4o", "api_key": "os.environ/TRADEOFF_K"})
    monkeypatch.delenv("TRADEOFF_K", raising=False)
    with pytest.raises(ConfigError) as info:
        entry.resolved_params()
    assert "TRADEOFF_K" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("TRADEOFF_K", "sk-secret-value")
    assert entry.resolved_params()["api_key"] == "sk-secret-value"
    assert entry.litellm_params["api_key"] == "os.environ/TRADEOFF_K"  # never resolved in place


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"litellm_params": {"model": "m"}}, "model_name is missing"),
        ({"model_name": "a"}, "needs litellm_params.model"),
        ({"model_name": "a", "litellm_params": {"model": "m", "api_key": "sk-literal"}},
         "literal api_key; write it as os.environ/NAME"),
        ({"model_name": "a", "litellm_params": {"model": "m"}, "tier": "gold"}, "tier 'gold'"),
        ({"model_name": "a", "litellm_params": {"model": "m"}, "gpu_hourly_usd": "cheap"},
         "gpu_hourly_usd must be a number"),
        ({"model_name": "a", "litellm_params": {"model": "m"}, "rpm": "lots"},
         "rpm must be a number"),
        ({"model_name": "a", "litellm_params": {"model": "m", "max_concurrency": -1}},
         "max_concurrency must be a number"),
        ({"model_name": "a", "litellm_params": {"model": "m", "input_cost_per_token": "free"}},
         "input_cost_per_token must be a number"),
        ("just a string", "must be a mapping"),
    ],
)  # fmt: skip
def test_bad_entries_are_one_line_errors(raw: object, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        parse_entry(raw, "models.yaml: model_list[0]")
    assert "sk-literal" not in str(info.value)


def test_file_level_mistakes(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="not found; create it or pass --config"):
        load_registry(tmp_path / "missing.yaml")
    assert len(load_registry(tmp_path / "missing.yaml", required=False)) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_registry(bad)
    twice = write(
        tmp_path / "twice.yaml", [{"model_name": "a", "litellm_params": {"model": "m"}}] * 2
    )
    with pytest.raises(ConfigError, match="'a' is listed twice"):
        load_registry(twice)


def test_upsert_replaces_one_entry_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        yaml.safe_dump(
            {"router_settings": {"x": 1}, "model_list": [
                {"model_name": "a", "litellm_params": {"model": "m1"}},
                {"model_name": "b", "litellm_params": {"model": "m2"}}]}
        )
    )  # fmt: skip
    upsert_model(config, ModelEntry("a", {"model": "m3"}, tier="local", gpu_hourly_usd=1.5))
    upsert_model(config, ModelEntry("c", {"model": "m4"}))
    doc = yaml.safe_load(config.read_text())
    assert doc["router_settings"] == {"x": 1}
    registry = load_registry(config)
    assert registry.names() == ["b", "a", "c"]
    assert registry.get("a").litellm_model == "m3" and registry.get("a").gpu_hourly_usd == 1.5
    assert not list(tmp_path.glob("*.tmp"))


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n"
        "      input_cost_per_token: 1e-06\n      output_cost_per_token: 2e-06\n"
    )
    assert load_registry(config).get("a").price_override == (1e-06, 2e-06)
