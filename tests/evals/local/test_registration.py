"""Registration into models.yaml and the store, and the calibration display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tradeoff.evals.llm import token_prices
from tradeoff.evals.local.describe import describe_calibration
from tradeoff.evals.local.registration import local_entry, previous_entry, register_local
from tradeoff.evals.registry import ModelEntry, load_registry, upsert_model
from tradeoff.evals.store import open_store

CALIBRATION: dict[str, Any] = {
    "measured_at": "2026-11-22T02:48:33+00:00",
    "gpu_hourly_usd": 2.0,
    "utilisation": 0.5,
    "concurrency": 4,
    "input_tokens_per_s": 1523.4,
    "output_tokens_per_s": 61.2,
    "usd_per_1m_input": 0.73,
    "usd_per_1m_output": 18.16,
    "method": "solved",
}


def test_entry_is_a_priced_hosted_vllm_model() -> None:
    entry = local_entry(
        "tiny", "tiny-served", "http://127.0.0.1:8000", gpu_hourly_usd=2.0, calibration=CALIBRATION
    )
    assert entry.tier == "local"
    assert entry.litellm_model == "hosted_vllm/tiny-served"
    assert entry.api_base == "http://127.0.0.1:8000/v1"
    assert token_prices(entry) == pytest.approx((0.73e-6, 18.16e-6))
    assert entry.extra["calibration"] == CALIBRATION


def test_register_writes_yaml_and_store(tmp_path: Path) -> None:
    config, db = tmp_path / "models.yaml", tmp_path / "t.duckdb"
    upsert_model(config, ModelEntry("gpt", {"model": "openai/gpt-4o"}))
    entry = local_entry(
        "tiny", "tiny", "http://127.0.0.1:8000", gpu_hourly_usd=2.0, calibration=CALIBRATION
    )
    register_local(entry, config=config, db=db, source="local attach")

    registry = load_registry(config)
    assert registry.names() == ["gpt", "tiny"]  # the other models are kept
    assert registry.get("tiny") == entry  # round-trips through YAML unchanged
    with open_store(db).connect() as con:
        row = con.execute(
            "SELECT litellm_model, api_base, tier, input_cost_per_token, output_cost_per_token, "
            "gpu_hourly_usd, calibration, source FROM models WHERE name = 'tiny'"
        ).fetchone()
    assert row is not None
    assert row[:6] == (
        "hosted_vllm/tiny",
        "http://127.0.0.1:8000/v1",
        "local",
        pytest.approx(0.73e-6),
        pytest.approx(18.16e-6),
        2.0,
    )
    assert json.loads(row[6]) == CALIBRATION
    assert row[7] == "local attach"


def test_reregistering_keeps_user_fields_and_replaces_the_row(tmp_path: Path) -> None:
    config, db = tmp_path / "models.yaml", tmp_path / "t.duckdb"
    first = local_entry("tiny", "tiny", "http://h:1", gpu_hourly_usd=2.0, calibration=CALIBRATION)
    first = ModelEntry(
        first.name,
        {**first.litellm_params, "api_key": "os.environ/VLLM_KEY"},
        "local",
        2.0,
        {**first.extra, "max_concurrency": 4},
    )
    register_local(first, config=config, db=db, source="local serve")
    # The server moved and no price is known now: stale prices must not follow it.
    second = local_entry(
        "tiny",
        "tiny",
        "http://h:2",
        gpu_hourly_usd=None,
        calibration=None,
        previous=previous_entry(config, "tiny"),
    )
    register_local(second, config=config, db=db, source="local attach")
    stored = load_registry(config).get("tiny")
    assert stored.api_base == "http://h:2/v1"
    assert stored.litellm_params["api_key"] == "os.environ/VLLM_KEY"
    assert stored.extra == {"max_concurrency": 4}
    assert stored.price_override is None
    with open_store(db).connect() as con:
        rows = con.execute("SELECT api_base, calibration FROM models").fetchall()
    assert rows == [("http://h:2/v1", None)]


def test_display_beside_api_prices() -> None:
    entry = local_entry("tiny", "tiny", "http://h:1", gpu_hourly_usd=2.0, calibration=CALIBRATION)
    assert describe_calibration(entry) == (
        "$2.00/GPU-h at 50% utilisation, 4 concurrent: 1523 in + 61.2 out tok/s -> "
        "$0.73 / $18.16 per 1M (2026-11-22)"
    )
    rounds = [{"output_tokens_per_s": v} for v in (55.12, 66.0, 61.0)]
    spread = local_entry(
        "tiny",
        "tiny",
        "http://h:1",
        gpu_hourly_usd=2.0,
        calibration={**CALIBRATION, "rounds": rounds},
    )
    assert "61.2 out tok/s (55.12-66 over 3 rounds) -> " in str(describe_calibration(spread))
    bounded = {**CALIBRATION, "method": "bounded"}
    entry = local_entry("tiny", "tiny", "http://h:1", gpu_hourly_usd=2.0, calibration=bounded)
    assert "per 1M (upper bound)" in str(describe_calibration(entry))
    assert describe_calibration(ModelEntry("gpt", {"model": "openai/gpt-4o"})) is None
    broken = ModelEntry("x", {"model": "hosted_vllm/x"}, "local", extra={"calibration": {}})
    assert "rerun `tradeoff local calibrate`" in str(describe_calibration(broken))
