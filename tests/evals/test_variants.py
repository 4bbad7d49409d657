"""Candidate variants: declared in models.yaml, measured by `tradeoff eval` and served by the proxy
as candidates of their own, with their settings on the wire on both adapter paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import OpenAI

from tests.evals.runner_fixtures import add_items, model_entry, qa_items
from tests.router.support import Proxy
from tests.support.upstream import Upstream
from tradeoff.evals.errors import ConfigError
from tradeoff.evals.registry import load_registry
from tradeoff.evals.runner import EvalSpec, run_eval
from tradeoff.evals.store import Store
from tradeoff.router.settings import Settings

TERSE = "Answer with the number only."


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-variants")


def models_yaml(path: Path, url: str, *, low_effort: str = "low", **base: Any) -> Path:
    entry = model_entry("mini", url, **base)
    entry["params"] = {"max_tokens": 50}
    entry["variants"] = [
        {"name": "low", "params": {"reasoning_effort": low_effort}},
        {"name": "terse", "system_prompt": TERSE, "params": {"temperature": 0}},
        {"name": "pricey", "litellm_params": {"output_cost_per_token": 1e-5}},
    ]
    path.write_text(yaml.safe_dump({"model_list": [entry]}, sort_keys=False))
    return path


def test_variants_are_registry_entries_of_their_own(tmp_path: Path) -> None:
    registry = load_registry(models_yaml(tmp_path / "models.yaml", "http://127.0.0.1:9/v1"))
    assert registry.names() == ["mini", "mini:low", "mini:terse", "mini:pricey"]
    low = registry.get("mini:low")
    assert low.litellm_model == "openai/mini" and low.extra["variant_of"] == "mini"
    assert low.extra["params"] == {"max_tokens": 50, "reasoning_effort": "low"}
    assert registry.get("mini:pricey").price_override == (1e-6, 1e-5)
    assert registry.get("mini").extra["variants"][0]["name"] == "low"  # the file round-trips


@pytest.mark.parametrize(
    ("variant", "says"),
    [
        ({"params": {"x": 1}}, "name must be a word"),
        ({"name": "a:b"}, "name must be a word"),
        ({"name": "low", "effort": "low"}, "unknown key 'effort'"),
        ({"name": "low", "params": {"model": "other"}}, "may not set model"),
        ({"name": "low", "params": ["low"]}, "params must be a mapping"),
        ({"name": "low", "system_prompt": 3}, "system_prompt must be a string"),
        ({"name": "low", "litellm_params": {"api_key": "sk-literal"}}, "literal api_key"),
    ],
)
def test_bad_variants_are_one_line_errors(tmp_path: Path, variant: Any, says: str) -> None:
    entry = model_entry("mini", "http://127.0.0.1:9/v1")
    entry["variants"] = [variant]
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"model_list": [entry]}))
    with pytest.raises(ConfigError, match=says) as info:
        load_registry(path)
    assert "\n" not in str(info.value) and "variants[0]" in str(info.value)


def test_a_variant_listed_twice_is_an_error(tmp_path: Path) -> None:
    entry = model_entry("mini", "http://127.0.0.1:9/v1")
    entry["variants"] = [{"name": "low"}, {"name": "low"}]
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"model_list": [entry]}))
    with pytest.raises(ConfigError, match="listed twice"):
        load_registry(path)


@pytest.mark.parametrize("path", ["direct", "litellm"])
def test_eval_sends_a_variants_settings_and_keys_its_outcomes_by_them(
    store: Store, upstream: Upstream, tmp_path: Path, path: str
) -> None:
    add_items(store, "qa", qa_items(3))
    config = models_yaml(tmp_path / "models.yaml", upstream.url, adapter=path)
    names = ["mini", "mini:low", "mini:terse"]
    spec = EvalSpec(dataset="qa", models=names, progress=False, params={"temperature": 0.5})
    before = len(upstream.requests)
    report = run_eval(store, load_registry(config), spec)
    assert report.recorded == 9
    sent = {r["messages"][-1]["content"]: r for r in upstream.requests[before:]}
    assert len(upstream.requests) - before == 9 and len(sent) == 3
    by_variant: dict[str, list[dict[str, Any]]] = {"plain": [], "low": [], "terse": []}
    for request in upstream.requests[before:]:
        if request.get("reasoning_effort") == "low":
            by_variant["low"].append(request)
        elif request["messages"][0]["role"] == "system":
            by_variant["terse"].append(request)
        else:
            by_variant["plain"].append(request)
    assert all(len(v) == 3 for v in by_variant.values())
    assert all(r["max_tokens"] == 50 for r in upstream.requests[before:])  # the base's params
    # The run's --temperature applies to every model; a variant's own setting wins.
    assert {r["temperature"] for r in by_variant["plain"] + by_variant["low"]} == {0.5}
    terse = by_variant["terse"][0]
    assert terse["temperature"] == 0 and terse["messages"][0] == {
        "role": "system",
        "content": TERSE,
    }
    with store.connect(read_only=True) as con:
        hashes = dict(con.execute("SELECT DISTINCT model, params_hash FROM outcomes").fetchall())
    assert len(set(hashes.values())) == 3  # each candidate keyed by what it sent

    again = run_eval(store, load_registry(config), spec)
    assert again.recorded == 0 and again.skipped == 9
    # Editing a variant's settings makes it another measurement: it is called again.
    edited = models_yaml(tmp_path / "models.yaml", upstream.url, low_effort="high", adapter=path)
    third = run_eval(store, load_registry(edited), spec)
    assert third.recorded == 3 and upstream.requests[-1]["reasoning_effort"] == "high"


@pytest.mark.parametrize("path", ["direct", "litellm"])
def test_the_proxy_serves_a_variant_with_its_settings(
    upstream: Upstream, tmp_path: Path, path: str
) -> None:
    config = models_yaml(tmp_path / "models.yaml", upstream.url, adapter=path)
    settings = Settings(config_path=config, db_path=tmp_path / "proxy.duckdb", retries=0)
    with Proxy(settings) as proxy:
        assert proxy.state.targets["mini:terse"].direct == (path == "direct")
        client = OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        ask = [{"role": "user", "content": "question 7"}]
        raw = client.chat.completions.with_raw_response.create(
            model="mini:terse", messages=ask, temperature=0.9
        )
        assert raw.headers["x-tradeoff-model"] == "mini:terse"
        sent = upstream.requests[-1]
        assert sent["model"] == "mini" and sent["temperature"] == 0
        assert sent["messages"] == [{"role": "system", "content": TERSE}, *ask]
        stream = client.chat.completions.create(model="mini:low", messages=ask, stream=True)
        assert "question 7" in "".join(
            c.choices[0].delta.content or "" for c in stream if c.choices
        )
        assert upstream.requests[-1]["reasoning_effort"] == "low"
        listed = {m.id for m in client.models.list()}
        assert {"mini", "mini:low", "mini:terse", "mini:pricey"} <= listed
