"""Convert the measured outcome data in ../shared/data into the bundled `long` Parquet files.

    python benchmarks/build_bundled_data.py [--source ../shared/data] [--out datasets]

Writes `outcomes.parquet` (long format) and `models.json` (USD per token of each model) into
datasets/llmrouter/ and datasets/routerarena/. The
conversion is deterministic: the same sources give byte-identical files. Each folder's README.md
explains what was converted and how; keep it in step with this script.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

# LLMRouter has no token counts. Typical answer length per task, in output tokens: the median
# output tokens RouterArena measured (claude-3-haiku + gemini-2.0-flash) for the same kind of
# metric: mcq_accuracy 65, exact_match 69, math_metric 97.5, code_accuracy 287, meteor_score 56.5.
ANSWER_TOKENS = {
    "mmlu": 65,
    "gpqa": 65,
    "arc_challenge": 65,
    "commonsense_qa": 65,
    "openbook_qa": 65,
    "agentverse-logicgrid": 65,
    "natural_qa": 69,
    "trivia_qa": 69,
    "gsm8k": 98,
    "math": 98,
    "agentverse-mgsm": 98,
    "mbpp": 287,
    "human_eval": 287,
    "commongen": 57,
}

LONG_COLUMNS = [
    "item_id",
    "task",
    "prompt",
    "reference",
    "split",
    "model",
    "score",
    "cost_usd",
    "prompt_tokens",
    "completion_tokens",
    "response",
]


def tokenizer() -> Any:
    """tiktoken's cl100k_base, loaded offline from the copy litellm ships."""
    import importlib.util

    import tiktoken

    # Found without importing litellm (whose import would try the network for its price map).
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.submodule_search_locations
    shipped = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils/tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(shipped))
    return tiktoken.get_encoding("cl100k_base")


def llmrouter(source: Path) -> pd.DataFrame:
    """9 models x (5,608 train + 500 test) queries; the 119 shared questions stay in test only."""
    prices = json.loads((source / "example_data/llm_candidates/default_llm.json").read_text())
    encoding = tokenizer()
    test_questions = {
        r["question"] for r in json.loads((source / "dcrouter_preprocessed/test.json").read_text())
    }
    rows: list[dict[str, Any]] = []
    for split in ("train", "test"):
        queries: dict[str, dict[str, Any]] = {}
        query_file = source / f"example_data/query_data/default_query_{split}.jsonl"
        for line in query_file.read_text().split("\n"):
            if not line.strip():
                continue
            record = json.loads(line)
            queries.setdefault(record["query"], record)  # first occurrence wins
        scored = json.loads((source / f"dcrouter_preprocessed/{split}.json").read_text())
        for entry in scored:
            question = entry["question"]
            if split == "train" and question in test_questions:
                continue
            meta = queries[question]
            task = meta["task_name"]
            digest = hashlib.sha1(question.encode()).hexdigest()[:12]
            prompt_tokens = len(encoding.encode(question))
            completion_tokens = ANSWER_TOKENS[task]
            for model, score in sorted(entry["scores"].items()):
                price = prices[model]
                cost = (
                    prompt_tokens * price["input_price"] + completion_tokens * price["output_price"]
                ) / 1e6
                rows.append(
                    {
                        "item_id": f"{task}-{digest}",
                        "task": task,
                        "prompt": question,
                        "reference": str(meta["ground_truth"]),
                        "split": split,
                        "model": model,
                        "score": float(score),
                        "cost_usd": cost,
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "response": None,
                    }
                )
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return dict(ast.literal_eval(value))
    return dict(value or {})


def routerarena(source: Path) -> pd.DataFrame:
    """2 API models x 809 queries with real per-query cost, tokens, responses and scores."""
    rows: list[dict[str, Any]] = []
    for file in sorted((source / "cached_results").glob("*.jsonl")):
        for line in file.read_text().split("\n"):
            if not line.strip():
                continue
            record = json.loads(line)
            usage = _as_dict(record["token_usage"])
            result = _as_dict(record["evaluation_result"])
            index = record["global_index"]
            rows.append(
                {
                    "item_id": index,
                    "task": index.split("_", 1)[0],
                    "prompt": record["question"],
                    "reference": str(result["ground_truth"]),
                    "split": None,
                    "model": file.stem,
                    # METEOR can dip a hair below 0 (-0.033 once); scores are in [0, 1] here.
                    "score": min(max(float(result["score"]), 0.0), 1.0),
                    "cost_usd": float(result["inference_cost"]),
                    "prompt_tokens": int(usage["input_tokens"]),
                    "completion_tokens": int(usage["output_tokens"]),
                    "response": record["generated_answer"],
                }
            )
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def write(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.sort_values(["item_id", "model"], kind="stable").reset_index(drop=True)
    frame["prompt_tokens"] = frame["prompt_tokens"].astype("int64")
    frame["completion_tokens"] = frame["completion_tokens"].astype("int64")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, compression="zstd", index=False)
    print(
        f"{path}: {len(frame)} rows, {frame['item_id'].nunique()} items, "
        f"{frame['model'].nunique()} models, {path.stat().st_size / 1e6:.2f} MB"
    )


def write_prices(prices: dict[str, tuple[float, float]], path: Path) -> None:
    """models.json: USD per input/output token for each model in the outcomes file."""
    doc = {
        name: {
            "input_cost_per_token": float(f"{i:g}e-6"),
            "output_cost_per_token": float(f"{o:g}e-6"),
        }
        for name, (i, o) in sorted(prices.items())
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def llmrouter_prices(source: Path) -> dict[str, tuple[float, float]]:
    listed = json.loads((source / "example_data/llm_candidates/default_llm.json").read_text())
    scored = json.loads((source / "dcrouter_preprocessed/test.json").read_text())[0]["scores"]
    return {m: (listed[m]["input_price"], listed[m]["output_price"]) for m in scored}


def routerarena_prices(source: Path) -> dict[str, tuple[float, float]]:
    listed = json.loads((source / "model_cost/cost.json").read_text())
    return {
        f.stem: (
            listed[f.stem]["input_token_price_per_million"],
            listed[f.stem]["output_token_price_per_million"],
        )
        for f in sorted((source / "cached_results").glob("*.jsonl"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "datasets")
    args = parser.parse_args()
    write(llmrouter(args.source / "llmrouter"), args.out / "llmrouter" / "outcomes.parquet")
    write(routerarena(args.source / "routerarena"), args.out / "routerarena" / "outcomes.parquet")
    write_prices(llmrouter_prices(args.source / "llmrouter"), args.out / "llmrouter/models.json")
    write_prices(
        routerarena_prices(args.source / "routerarena"), args.out / "routerarena/models.json"
    )


if __name__ == "__main__":
    main()
