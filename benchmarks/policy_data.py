"""Synthetic outcome sets for `bench_policies.py`, beside the bundled (real) ones.

- `synthetic`: 10k items x 10 models, 20 tasks; each model has a skill per task, items have a
  latent difficulty that shows in their wording; one price per model (every call of a model
  costs the same), so only the task and the prompt text carry signal.
- `synthetic_lengths`: the same kind of items with prompt lengths spread over two orders of
  magnitude and per-token prices (input and output, output length typical of the model and the
  task, with noise), so the cost of a request depends on its length: the case per-request cost
  prediction is for. Its figures say what the mechanism can do, not what real data will give.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.policies.synthetic import build_store
from tradeoff.evals.store import Store

HARD = ["prove", "derive", "optimize", "formal", "rigorous", "multi-step"]
EASY = ["list", "name", "define", "simple", "short", "basic"]


def synthetic(path: Path, n_items: int = 10_000, n_models: int = 10, seed: int = 0) -> Store:
    rng = np.random.default_rng(seed)
    tasks = [f"task{t:02d}" for t in range(20)]
    skill = (
        rng.normal(0, 1.0, size=(n_models, len(tasks))) + np.linspace(-1, 1.5, n_models)[:, None]
    )
    prices = {f"model{j}": float(1e-4 * 10 ** (2 * j / (n_models - 1))) for j in range(n_models)}
    difficulty = rng.normal(0, 1.0, size=n_items)
    per_task = n_items // len(tasks)

    def prompt(task: str, i: int) -> str:
        k = tasks.index(task) * per_task + i
        words = HARD if difficulty[k] > 0 else EASY
        return f"{task} question {i}: please {' '.join(rng.choice(words, size=3))} the answer"

    def score(r: np.random.Generator, task: str, model: str, i: int) -> float:
        k = tasks.index(task) * per_task + i
        logit = skill[int(model[5:]), tasks.index(task)] - 1.5 * difficulty[k]
        return float(r.random() < 1 / (1 + np.exp(-logit)))

    return build_store(
        path, dataset="synthetic", tasks=dict.fromkeys(tasks, per_task), models=prices,
        score=score, prompt=prompt, seed=seed,
    )  # fmt: skip


def synthetic_lengths(path: Path, n_items: int = 6_000, n_models: int = 6, seed: int = 1) -> Store:
    rng = np.random.default_rng(seed)
    tasks = [f"kind{t:02d}" for t in range(12)]
    per_task = n_items // len(tasks)
    skill = (
        rng.normal(0, 0.8, size=(n_models, len(tasks))) + np.linspace(-0.8, 1.2, n_models)[:, None]
    )
    # USD per token: input from 0.1 to 10 per 1M, output 4x input; verbosity per model and task.
    price_in = 1e-7 * 10 ** (2 * np.arange(n_models) / (n_models - 1))
    verbose = np.exp(rng.normal(0, 0.5, size=(n_models, len(tasks)))) * 150
    difficulty = rng.normal(0, 1.0, size=n_items)
    chars = np.exp(rng.normal(6.5, 1.2, size=n_items)).astype(int) + 40  # ~40 to ~20k characters

    def index(task: str, i: int) -> int:
        return tasks.index(task) * per_task + i

    def prompt(task: str, i: int) -> str:
        k = index(task, i)
        words = HARD if difficulty[k] > 0 else EASY
        head = f"{task} question {i}: please {' '.join(rng.choice(words, size=3))} the answer. "
        return head + "context " * max(0, (chars[k] - len(head)) // 8)

    def score(r: np.random.Generator, task: str, model: str, i: int) -> float:
        logit = skill[int(model[5:]), tasks.index(task)] - 1.5 * difficulty[index(task, i)]
        return float(r.random() < 1 / (1 + np.exp(-logit)))

    noise = np.random.default_rng(seed + 1)

    def cost(task: str, model: str, i: int) -> float:
        j = int(model[5:])
        tokens_in = chars[index(task, i)] / 4
        tokens_out = verbose[j, tasks.index(task)] * noise.lognormal(0, 0.3)
        return float(price_in[j] * tokens_in + 4 * price_in[j] * tokens_out)

    return build_store(
        path, dataset="synthetic_lengths", tasks=dict.fromkeys(tasks, per_task),
        models={f"model{j}": 0.0 for j in range(n_models)}, score=score, prompt=prompt,
        seed=seed, cost=cost,
    )  # fmt: skip
