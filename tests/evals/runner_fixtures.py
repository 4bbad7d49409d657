"""Helpers for the eval runner tests: items in a real store, a models.yaml for the stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.support.upstream import Rule
from tradeoff.evals.store import Store

# $1 per million tokens each way: costs are easy to predict from the stand-in's word counts.
PRICE = 1e-6


def add_items(store: Store, dataset: str, items: list[dict[str, Any]]) -> None:
    """Insert items (keys: item_id, prompt, reference, grader, task?, messages?, metadata?)."""
    with store.transaction() as con:
        for item in items:
            con.execute(
                "INSERT INTO items (dataset, item_id, task, prompt, messages, reference, grader, "
                "split, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    dataset,
                    item["item_id"],
                    item.get("task", "qa"),
                    item.get("prompt"),
                    json.dumps(item["messages"]) if item.get("messages") else None,
                    item.get("reference"),
                    item.get("grader", "exact"),
                    item.get("split", "test"),
                    json.dumps(item.get("metadata") or {}),
                ],
            )


def qa_items(n: int, *, grader: str = "contains") -> list[dict[str, Any]]:
    """n items "question k" whose reference "k" the stand-in's echo reply contains."""
    return [
        {"item_id": f"q{k:03d}", "prompt": f"question {k}", "reference": str(k), "grader": grader}
        for k in range(n)
    ]


def model_entry(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """A models.yaml entry for `openai/<name>` at the stand-in, priced at PRICE per token."""
    params: dict[str, Any] = {
        "model": f"openai/{name}",
        "api_base": url,
        "api_key": "os.environ/TRADEOFF_TEST_KEY",
        "input_cost_per_token": PRICE,
        "output_cost_per_token": PRICE,
    }
    params.update(extra.pop("litellm_params", {}))
    return {"model_name": name, "litellm_params": params, "tier": "frontier", **extra}


def write_models(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"model_list": entries}, sort_keys=False))
    return path


# A model that breaks JSON on its first try and fixes it when shown the error (issue 26).
BROKEN = '{"answer": 4,'
FIXED = '{"answer": 4}'


def sloppy_rules() -> list[Rule]:
    """Broken JSON, unless the last user turn is a verifier's failure message."""
    return [
        Rule(model="sloppy", contains="Your answer failed", reply=FIXED),
        Rule(model="sloppy", reply=BROKEN),
    ]


def sloppy_models(path: Path, url: str, **variant: Any) -> Path:
    entry = model_entry("sloppy", url)
    entry["variants"] = [{"name": "fix", "refine": {"rounds": 2}, **variant}]
    return write_models(path, [entry])


# A tool call whose arguments the offered tool's schema refuses, fixed when shown the error.
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def clumsy_rules() -> list[Rule]:
    return [
        Rule(model="clumsy", contains="Your answer failed",
             tool_call={"name": "lookup", "arguments": {"city": "Paris"}}),
        Rule(model="clumsy", tool_call={"name": "lookup", "arguments": {"town": 3}}),
    ]  # fmt: skip


# Escalation: `stubborn` never fixes its JSON; `big`, ten times dearer, answers right at once.
BIG_PRICE = 10 * PRICE


def escalation_rules() -> list[Rule]:
    return [Rule(model="stubborn", reply=BROKEN), Rule(model="big", reply=FIXED)]


def escalation_models(path: Path, url: str, rounds: int = 1) -> Path:
    stubborn = model_entry("stubborn", url)
    stubborn["variants"] = [{"name": "fix", "refine": {"rounds": rounds}, "escalate": "big"}]
    big = model_entry(
        "big",
        url,
        litellm_params={"input_cost_per_token": BIG_PRICE, "output_cost_per_token": BIG_PRICE},
    )
    return write_models(path, [stubborn, big])
