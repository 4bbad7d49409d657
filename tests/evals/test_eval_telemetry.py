"""`tradeoff eval` exports a span per measured call when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evals.runner_fixtures import add_items, model_entry, qa_items, write_models
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import Store

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK (tradeoff[otel])")
from tests.support.otlp import Receiver


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream([Rule(model="wrong", reply="no idea"), Rule(model="denied", status=401)]) as up:
        yield up


def test_each_call_is_a_span_with_its_item_tokens_cost_and_grade(
    tmp_path: Path,
    store: Store,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., Any],
) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-test")
    add_items(store, "qa", qa_items(3))
    config = write_models(
        tmp_path / "models.yaml", [model_entry(n, upstream.url) for n in ("right", "denied")]
    )
    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        code, _, err = run_cli(
            "eval", "--dataset", "qa", "--models", "right,denied", "--config", str(config),
            "--db", str(store.path), "--no-progress",
        )  # fmt: skip
    assert code == 0, err
    spans = receiver.spans
    assert len(spans) == 6  # 3 items x 2 models
    right = [s for s in spans if s["name"] == "chat right"]
    assert len(right) == 3
    attrs = right[0]["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["tradeoff.dataset"] == "qa"
    assert attrs["tradeoff.score"] == 1.0
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["tradeoff.cost_usd"] > 0
    assert {s["attributes"]["tradeoff.item_id"] for s in right} == {"q000", "q001", "q002"}
    denied = [s for s in spans if s["name"] == "chat denied"]
    assert all(s["attributes"]["error.type"] == "401" for s in denied)
