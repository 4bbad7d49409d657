"""The README's user path end to end, through the real CLI: import items, `tradeoff eval` against
an upstream stand-in, `tradeoff fit`, `tradeoff serve` with the fitted policy, the official
openai client, and the request log the dashboard reads; on a DuckDB file and on a PostgreSQL
database (`--db postgresql://...`).

The scripted world: `cheap` answers easy questions right and hard ones wrong; `strong` answers
everything right at 100x the price. A policy that keeps >= 90% of strong's accuracy must send
hard questions to strong, and should send easy ones to cheap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai import OpenAI

import tradeoff
from tests.router.support import serve_process
from tests.support.processes import stop
from tests.support.upstream import Rule, Upstream, last_user_text
from tradeoff.evals.store import Store


def answer(body: dict[str, Any]) -> str:
    """n+1 for "what is n plus one?"; the cheap model gets hard questions wrong."""
    prompt = last_user_text(body)
    n = int(re.search(r"(\d+)", prompt).group(1))  # type: ignore[union-attr]
    wrong = body["model"] == "cheap" and "hard" in prompt
    return str(n + 2 if wrong else n + 1)


def write_items(path: Path) -> None:
    lines = []
    for k in range(80):
        task = "easy" if k % 2 else "hard"
        prompt = f"{task} question: what is {k} plus one?"
        lines.append({"id": f"{task}-{k}", "task": task, "prompt": prompt,
                      "reference": str(k + 1), "grader": "exact"})  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def write_models(path: Path, url: str) -> None:
    def entry(name: str, price: float) -> dict[str, Any]:
        params = {"model": f"openai/{name}", "api_base": url, "input_cost_per_token": price,
                  "output_cost_per_token": price}  # fmt: skip
        return {"model_name": name, "litellm_params": params, "tier": "frontier"}

    path.write_text(yaml.safe_dump({"model_list": [entry("cheap", 1e-7), entry("strong", 1e-5)]}))


def cli(*argv: str) -> None:
    assert tradeoff.main(list(argv)) == 0, argv


@pytest.mark.slow
def test_measure_fit_serve_and_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store_target: str
) -> None:
    db, config = store_target, tmp_path / "models.yaml"
    items, policy = tmp_path / "items.jsonl", tmp_path / "policy.json"
    write_items(items)
    with Upstream([Rule(reply=answer)]) as up:
        write_models(config, up.url)
        cli("import", str(items), "--dataset", "qa", "--format", "items", "--db", db)
        cli("eval", "--dataset", "qa", "--models", "cheap,strong", "--config", str(config),
            "--db", db, "--no-progress")  # fmt: skip
        assert up.model_counts == {"cheap": 80, "strong": 80}
        capsys.readouterr()
        # 90%: 56 training items, every one answered right, show at most ~93% of the baseline
        # at the search's confidence (an exact binomial bound), so 95% cannot be promised.
        cli("fit", "--dataset", "qa", "--baseline", "strong", "--require",
            "accuracy >= 90% of baseline", "--test-fraction", "0.3", "--trials", "40",
            "--out", str(policy), "--db", db, "--json")  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        # Held-out figures, with an interval, on the items the fit never saw.
        assert report["split"] != "train" and 0 < report["n"] < 80
        assert report["accuracy"] == pytest.approx(1.0)
        assert report["savings_vs_baseline"] > 0.3
        assert len(report["accuracy_ci"]) == 2
        # The read commands see the same store (and say which one they read).
        cli("replay", "--policy", str(policy), "--db", db, "--json")
        assert json.loads(capsys.readouterr().out)["accuracy"] == report["accuracy"]
        cli("datasets", "--db", db)
        out = capsys.readouterr().out
        assert out.splitlines()[0] == f"store: {Store(db)}"
        assert out.splitlines()[2].split()[:5] == ["qa", "80", "160", "2", "2"]

        process, url, _ = serve_process(
            ["--policy", str(policy), "--config", str(config), "--db", db]
        )
        try:
            client = OpenAI(base_url=url, api_key="unused", max_retries=0)
            routed = {}
            for task in ("easy", "hard"):
                raw = client.chat.completions.with_raw_response.create(
                    model=report["policy"],
                    messages=[
                        {"role": "user", "content": f"{task} question: what is 41 plus one?"}
                    ],
                    extra_headers={"x-tradeoff-task": task},
                )
                assert raw.parse().choices[0].message.content == "42"
                routed[task] = raw.headers["x-tradeoff-model"]
            assert routed == {"easy": "cheap", "hard": "strong"}
        finally:
            stop(process, timeout_s=30)  # SIGTERM: the server flushes its log, then exits
    with Store(db).connect(read_only=True) as con:
        rows = con.execute(
            "SELECT task, model, status, cost_usd < baseline_cost_usd FROM requests ORDER BY task"
        ).fetchall()
    assert rows == [("easy", "cheap", 200, True), ("hard", "strong", 200, False)]
