"""Items carry request settings: the items importer keeps `metadata`, and its
`response_format`, `tools`, `tool_choice` and `params` go on the wire with every eval call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.evals.runner_fixtures import model_entry, write_models
from tests.support.upstream import Upstream
from tradeoff.evals.errors import ImportFormatError
from tradeoff.evals.importers import import_file
from tradeoff.evals.registry import load_registry
from tradeoff.evals.runner import EvalSpec, run_eval
from tradeoff.evals.store import Store

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}
METADATA = {
    "response_format": {"type": "json_object"},
    "tools": [TOOL],
    "tool_choice": "auto",
    "params": {"max_tokens": 77},
    "tolerance": 0.1,
}


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "sk-items")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


def write_items(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_an_items_metadata_is_kept_and_sent_with_every_call(
    store: Store, upstream: Upstream, tmp_path: Path
) -> None:
    items = write_items(
        tmp_path / "items.jsonl",
        [
            {"id": "j1", "task": "json", "prompt": "give json", "grader": "json_valid",
             "metadata": METADATA},
            {"id": "p1", "task": "plain", "prompt": "say hi", "grader": "contains",
             "reference": "hi"},
        ],
    )  # fmt: skip
    import_file(store, items, "d", fmt="items")
    with store.connect(read_only=True) as con:
        stored = dict(con.execute("SELECT item_id, metadata FROM items").fetchall())
    assert json.loads(stored["j1"]) == METADATA and stored["p1"] is None
    config = write_models(tmp_path / "models.yaml", [model_entry("m", upstream.url)])
    before = len(upstream.requests)
    spec = EvalSpec(dataset="d", models=["m"], progress=False, params={"temperature": 0.3})
    assert run_eval(store, load_registry(config), spec).recorded == 2
    sent = {r["messages"][-1]["content"]: r for r in upstream.requests[before:]}
    json_call, plain_call = sent["give json"], sent["say hi"]
    assert json_call["response_format"] == {"type": "json_object"}
    assert json_call["tools"] == [TOOL] and json_call["tool_choice"] == "auto"
    assert json_call["max_tokens"] == 77 and json_call["temperature"] == 0.3
    assert "tolerance" not in json_call  # grader options stay with the grader
    assert not {"response_format", "tools", "tool_choice", "max_tokens"} & set(plain_call)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({"responce_format": {"type": "json_object"}}, "2: responce_format: unknown field"),
        ({"metadata": "json please"}, "2: metadata: is not valid JSON"),
        ({"metadata": [1]}, "2: metadata: must be a JSON object"),
        ({"metadata": {"params": {"stream": True}}}, "2: metadata: params may not set stream"),
        ({"metadata": {"tools": {"a": 1}}}, "2: metadata: tools must be a list"),
    ],
)
def test_a_bad_items_field_is_an_error_naming_it(
    store: Store, tmp_path: Path, row: dict[str, Any], says: str
) -> None:
    items = write_items(
        tmp_path / "items.jsonl",
        [{"id": "a", "task": "t", "prompt": "p"}, {"id": "b", "task": "t", "prompt": "q", **row}],
    )
    with pytest.raises(ImportFormatError, match=says):
        import_file(store, items, "d", fmt="items")
