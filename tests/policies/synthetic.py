"""Synthetic outcome stores (real DuckDB files) whose right answer is known."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from tradeoff.evals.store import Store, open_store

# score(rng, task, model, i) -> score in [0, 1]
ScoreFn = Callable[[np.random.Generator, str, str, int], float]


def build_store(
    path: Path,
    *,
    dataset: str = "synth",
    tasks: dict[str, int],
    models: dict[str, float],
    score: ScoreFn,
    split: Callable[[int], str | None] = lambda i: None,
    prompt: Callable[[str, int], str] = lambda task, i: f"{task} question number {i}",
    responses: Callable[[str, str, int, float], str | None] | None = None,
    samples: int = 1,
    latency: Callable[[str], float] | None = None,
    seed: int = 0,
    cost: Callable[[str, str, int], float] | None = None,
) -> Store:
    """Items per task, outcomes per model (cost = models[model] per call, or
    `cost(task, model, i)` when given)."""
    rng = np.random.default_rng(seed)
    store = open_store(path)
    items, outcomes = [], []
    counter = 0
    for task, count in tasks.items():
        for k in range(count):
            item_id = f"{task}-{k:05d}"
            items.append([dataset, item_id, task, prompt(task, k), split(counter)])
            counter += 1
            for model, price in models.items():
                usd = cost(task, model, k) if cost else price
                for s in range(samples):
                    value = float(score(rng, task, model, k))
                    text = responses(task, model, k, value) if responses else None
                    lat = latency(model) if latency else None
                    outcomes.append([dataset, item_id, model, s, text, value, usd, lat])
    item_frame = pd.DataFrame(items, columns=["dataset", "item_id", "task", "prompt", "split"])
    outcome_frame = pd.DataFrame(
        outcomes,
        columns=[
            "dataset",
            "item_id",
            "model",
            "sample",
            "response",
            "score",
            "cost_usd",
            "latency_ms",
        ],
    )
    with store.transaction() as con:
        con.execute("INSERT INTO datasets (name) VALUES (?)", [dataset])
        con.register("item_frame", item_frame)
        con.register("outcome_frame", outcome_frame)
        con.execute("INSERT INTO items BY NAME SELECT * FROM item_frame")
        con.execute(
            "INSERT INTO outcomes BY NAME SELECT dataset, item_id, model, sample::INTEGER AS sample, "
            "response::VARCHAR AS response, score, cost_usd, latency_ms::DOUBLE AS latency_ms "
            "FROM outcome_frame"
        )
    return store


def specialist_store(path: Path, *, n: int = 300, seed: int = 0) -> Store:
    """`cheap` is as good as `strong` on task A and poor on task B; `strong` costs 10x."""

    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"A": {"cheap": 0.9, "strong": 0.9}, "B": {"cheap": 0.2, "strong": 0.9}}[task][model]
        return float(rng.random() < p)

    return build_store(
        path,
        tasks={"A": n, "B": n},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        seed=seed,
    )
