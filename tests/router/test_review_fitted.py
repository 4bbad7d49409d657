"""From the fit to the reviewer: a policy fitted with a human tier (`fit --human-cost`) sends
the task its models fail to review when served, and the rest to its models."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import yaml

from tests.policies.synthetic import build_store
from tests.router.support import Proxy
from tests.router.test_reviews import write_config
from tests.support.upstream import Rule, Upstream
from tradeoff.cli import main
from tradeoff.router.settings import Settings


def test_a_fitted_review_tier_is_served(tmp_path: Path) -> None:
    def score(rng: np.random.Generator, task: str, model: str, i: int) -> float:
        p = {"cheap": {"easy": 1.0, "hard": 0.0}, "strong": {"easy": 1.0, "hard": 0.5}}
        return float(rng.random() < p[model][task])

    db = str(tmp_path / "s.duckdb")
    build_store(
        Path(db),
        tasks={"easy": 900, "hard": 100},
        models={"cheap": 0.001, "strong": 0.01},
        score=score,
        split=lambda i: "test" if i % 3 == 0 else "train",
    )
    fit = ["fit", "--dataset", "synth", "--baseline", "strong", "--trials", "3", "--db", db]
    fit += ["--train-split", "train", "--test-split", "test", "--name", "triage"]
    fit += ["--require", "accuracy >= 100% of baseline and human_review <= 15%"]
    fit += ["--human-cost", "0.002", "--config", str(tmp_path / "no-models.yaml")]
    assert main(fit) == 0
    with Upstream([Rule(model="cheap", reply="ok"), Rule(model="strong")]) as up:
        # Serving needs the reviewer configured: a human tier at the fitted price.
        config = write_config(tmp_path / "models.yaml", up.url, draft="strong")
        config.write_text(
            config.read_text().replace("review_cost_usd: 0.5", "review_cost_usd: 0.002")
        )
        settings = Settings(stored_policies=("triage",), config_path=config, db_path=db)  # type: ignore[arg-type]
        with Proxy(settings) as proxy:

            def ask(task: str) -> httpx.Response:
                body = {"model": "triage", "messages": [{"role": "user", "content": "q"}]}
                headers = {"x-tradeoff-task": task}
                return httpx.post(f"{proxy.url}/chat/completions", json=body, headers=headers)

            hard, easy = ask("hard"), ask("easy")
    assert hard.status_code == 200 and hard.headers["x-tradeoff-review"] == "required"
    assert hard.headers["x-tradeoff-model"] == "strong"  # the reviewer's draft answered
    assert easy.status_code == 200 and "x-tradeoff-review" not in easy.headers
    assert easy.headers["x-tradeoff-model"] == "cheap"
    reviewer = next(
        m for m in yaml.safe_load(config.read_text())["model_list"] if m["model_name"] == "reviewer"
    )
    assert reviewer["review_cost_usd"] == 0.002  # served at the price it was fitted for
