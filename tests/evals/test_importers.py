"""Importers against real DuckDB files: counts, re-imports, blank scores and malformed files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.evals.conftest import snapshot
from tradeoff.evals.errors import ImportFormatError, MissingFileError, UsageError
from tradeoff.evals.importers import import_file
from tradeoff.evals.store import Store

# RouterBench's 11 models, with the kind of per-call cost each had.
ROUTERBENCH_MODELS = {
    "gpt-4-1106-preview": 0.012,
    "gpt-3.5-turbo-1106": 0.0008,
    "claude-instant-v1": 0.0006,
    "claude-v1": 0.006,
    "claude-v2": 0.006,
    "meta/llama-2-70b-chat": 0.0007,
    "mistralai/mixtral-8x7b-chat": 0.0004,
    "zero-one-ai/Yi-34B-Chat": 0.0006,
    "WizardLM/WizardLM-13B-V1.2": 0.0002,
    "meta/code-llama-instruct-34b-chat": 0.0006,
    "mistralai/mistral-7b-chat": 0.0002,
}


def write_routerbench_csv(path: Path, n_prompts: int = 24, blanks: int = 7) -> dict[str, int]:
    """A small RouterBench-style wide CSV; returns the counts an import should report."""
    rng = np.random.default_rng(7)
    evals = ["mmlu-abstract-algebra", "gsm8k", "mbpp", "hellaswag"]
    frame = pd.DataFrame(
        {
            "sample_id": [f"{evals[i % 4]}.{i}" for i in range(n_prompts)],
            # RouterBench stores prompts as stringified lists; commas, quotes and newlines
            # exercise the CSV quoting.
            "prompt": [f"['Question {i}: what is \"x\",\\nreally?\\n']" for i in range(n_prompts)],
            "eval_name": [evals[i % 4] for i in range(n_prompts)],
        }
    )
    for model, cost in ROUTERBENCH_MODELS.items():
        frame[model] = rng.integers(0, 2, n_prompts).astype(float)
        frame[f"{model}|model_response"] = [f"answer {i} from {model}" for i in range(n_prompts)]
        frame[f"{model}|total_cost"] = cost * (1 + rng.random(n_prompts))
    cells = rng.choice(n_prompts * len(ROUTERBENCH_MODELS), size=blanks, replace=False)
    for cell in cells:
        frame.loc[cell // len(ROUTERBENCH_MODELS), list(ROUTERBENCH_MODELS)[cell % 11]] = np.nan
    frame["oracle_model_to_route_to"] = "gpt-4-1106-preview"
    frame.to_csv(path, index=False)
    return {
        "items": n_prompts,
        "outcomes": n_prompts * len(ROUTERBENCH_MODELS) - blanks,
        "skipped": blanks,
    }


LONG_ROWS = [
    {"item_id": "q1", "task": "math", "prompt": "What is\n2+2?", "model": "small",
     "score": 1.0, "cost_usd": 0.001, "reference": "4", "latency_ms": 120.5,
     "prompt_tokens": 9, "completion_tokens": 3, "response": "4"},
    {"item_id": "q1", "task": "math", "prompt": "What is\n2+2?", "model": "large",
     "score": 1.0, "cost_usd": 0.01, "reference": "4", "latency_ms": 300.0,
     "prompt_tokens": 9, "completion_tokens": 3, "response": "4"},
    {"item_id": "q2", "task": "qa", "prompt": "Capital of France?", "model": "small",
     "score": None, "cost_usd": 0.001, "reference": "None", "latency_ms": None,
     "prompt_tokens": None, "completion_tokens": None, "response": None},
    {"item_id": "q2", "task": "qa", "prompt": "Capital of France?", "model": "large",
     "score": 0.5, "cost_usd": 0.02, "reference": "None", "latency_ms": 250.0,
     "prompt_tokens": 5, "completion_tokens": 2, "response": "Paris?"},
]  # fmt: skip


def write_long(path: Path, rows: list[dict[str, object]] = LONG_ROWS) -> Path:
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        frame.to_parquet(path, index=False)
    return path


def table(store: Store, sql: str) -> list[tuple[object, ...]]:
    with store.connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def test_routerbench_wide_csv_of_11_models(store: Store, tmp_path: Path) -> None:
    expected = write_routerbench_csv(tmp_path / "routerbench.csv")
    summary = import_file(store, tmp_path / "routerbench.csv", "rb", fmt="routerbench")
    assert summary.items == summary.items_inserted == expected["items"]
    assert summary.outcomes_inserted == expected["outcomes"]
    assert summary.skipped_empty_scores == expected["skipped"]
    assert summary.models == sorted(ROUTERBENCH_MODELS)
    assert table(store, "SELECT count(*), count(DISTINCT model) FROM outcomes") == [
        (expected["outcomes"], 11)
    ]
    assert table(store, "SELECT count(DISTINCT task) FROM items WHERE dataset = 'rb'") == [(4,)]
    prompt, response = table(
        store,
        "SELECT i.prompt, o.response FROM items i JOIN outcomes o USING (dataset, item_id) "
        "WHERE i.item_id = 'mmlu-abstract-algebra.0' AND o.model = 'claude-v2'",
    )[0]
    assert prompt == "['Question 0: what is \"x\",\\nreally?\\n']"
    assert response == "answer 0 from claude-v2"
    assert table(store, "SELECT name, source, tier FROM models ORDER BY name") == [
        (m, "import", None) for m in sorted(ROUTERBENCH_MODELS)
    ]
    assert table(store, "SELECT kind, dataset, status, n_outcomes FROM runs") == [
        ("import", "rb", "done", expected["outcomes"])
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_long_format_reads_csv_jsonl_and_parquet_alike(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    summary = import_file(store, write_long(tmp_path / f"long{suffix}"), "d", split="test")
    assert (summary.items, summary.outcomes_inserted, summary.skipped_empty_scores) == (2, 3, 1)
    assert table(store, "SELECT item_id, task, prompt, reference, split FROM items ORDER BY 1") == [
        ("q1", "math", "What is\n2+2?", "4", "test"),
        ("q2", "qa", "Capital of France?", "None", "test"),  # "None" is text, not missing
    ]
    assert table(
        store,
        "SELECT item_id, model, sample, score, cost_usd, latency_ms, prompt_tokens, response "
        "FROM outcomes ORDER BY 1, 2",
    ) == [
        ("q1", "large", 0, 1.0, 0.01, 300.0, 9, "4"),
        ("q1", "small", 0, 1.0, 0.001, 120.5, 9, "4"),
        ("q2", "large", 0, 0.5, 0.02, 250.0, 5, "Paris?"),
    ]


def test_reimport_updates_in_place_without_duplicates(store: Store, tmp_path: Path) -> None:
    path = write_long(tmp_path / "long.csv")
    import_file(store, path, "d")
    again = import_file(store, path, "d")
    assert (again.items_inserted, again.outcomes_inserted, again.outcomes_updated) == (0, 0, 0)
    assert again.outcomes_unchanged == 3
    changed = [dict(r, score=0.0) if r["model"] == "large" else r for r in LONG_ROWS]
    third = import_file(store, write_long(tmp_path / "changed.csv", changed), "d")
    assert (third.outcomes_updated, third.outcomes_unchanged) == (2, 1)
    assert table(store, "SELECT count(*), sum(score) FROM outcomes") == [(3, 1.0)]
    assert table(store, "SELECT count(*) FROM items") == [(2,)]
    assert table(store, "SELECT count(*) FROM runs") == [(3,)]


@pytest.mark.parametrize("blank", ["", "NaN", "nan", "null"])
def test_blank_scores_are_skipped_and_counted(store: Store, tmp_path: Path, blank: str) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(
        "item_id,task,prompt,model,score,cost_usd\n"
        f"a,t,p,m1,{blank},0.1\na,t,p,m2,1,0.1\nb,t,p2,m1,{blank},\n"
    )
    summary = import_file(store, path, "d")
    assert (summary.items, summary.outcomes_inserted, summary.skipped_empty_scores) == (2, 1, 2)
    assert table(store, "SELECT item_id, model FROM outcomes") == [("a", "m2")]


def test_items_format_then_outcomes_keep_the_reference(store: Store, tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text(
        json.dumps({"id": "q1", "task": "math", "prompt": "2+2?", "reference": "4",
                    "grader": "numeric"}) + "\n\n"
        + json.dumps({"id": 7, "task": "chat",
                      "messages": [{"role": "user", "content": "hi"}]}) + "\n"
    )  # fmt: skip
    summary = import_file(store, items, "d", fmt="items", split="train")
    assert (summary.items, summary.outcomes_inserted, summary.models) == (2, 0, [])
    outcomes = tmp_path / "o.csv"
    outcomes.write_text("item_id,task,prompt,model,score,cost_usd\nq1,math,2+2?,m,1,0.5\n")
    import_file(store, outcomes, "d")
    assert table(
        store, "SELECT item_id, reference, grader, split, messages FROM items ORDER BY 1"
    ) == [
        ("7", None, None, "train", '[{"role": "user", "content": "hi"}]'),
        ("q1", "4", "numeric", "train", None),
    ]


def malformed_cases(tmp_path: Path) -> list[tuple[Path, str, str]]:
    """(file, fmt, the exact error) for each kind of bad input."""
    header = "item_id,task,prompt,model,score,cost_usd\n"
    good = 'a,t,"two\nlines",m,1,0.1\n'  # a quoted newline: the next record starts on line 4
    cases = {
        "abc.csv": (header + good + "b,t,p,m,abc,0.1\n", "long", "4: score: 'abc' is not a number"),
        "high.csv": (
            header + good + "b,t,p,m,1.5,0.1\n",
            "long",
            "4: score: 1.5 is outside [0, 1]",
        ),
        "negative_cost.csv": (header + "b,t,p,m,1,-2\n", "long", "2: cost_usd: -2 is below 0"),
        "no_task.csv": (
            "item_id,prompt,model,score,cost_usd\na,p,m,1,0.1\n",
            "long",
            "1: task: required column is missing",
        ),
        "empty_model.csv": (header + "a,t,p,,1,0.1\n", "long", "2: model: is empty"),
        "dup.csv": (header + good + good, "long", "4: model: item 'a', model 'm', sample 0"),
        "task_conflict.csv": (
            header + "a,t,p,m,1,0.1\na,u,p,m2,1,0.1\n",
            "long",
            "3: task: item 'a' has task 'u' here but 't'",
        ),
        "bad.jsonl": (
            '{"item_id": "a", "task": "t", "prompt": "p", "model": "m", "score": 1, '
            '"cost_usd": 0.1}\n{"item_id": "b", "task": \n',
            "long",
            "2: not valid JSON",
        ),
        "rb_cost.csv": (
            "sample_id,prompt,eval_name,m1,m1|total_cost\ns1,p,e,1,0.1\ns2,p,e,0.5,\n",
            "routerbench",
            "3: m1|total_cost: is empty but the score is not",
        ),
        "rb_missing.csv": (
            "sample_id,prompt,eval_name,m1\ns1,p,e,1\n",
            "routerbench",
            "1: m1|total_cost: required column is missing",
        ),
    }
    out = []
    for name, (text, fmt, error) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        out.append((path, fmt, f"{path}:{error}"))
    return out


def test_malformed_files_fail_with_file_line_column_and_change_nothing(
    store: Store, tmp_path: Path
) -> None:
    import_file(store, write_long(tmp_path / "good.csv"), "d")
    before = snapshot(store)
    for path, fmt, error in malformed_cases(tmp_path):
        with pytest.raises(ImportFormatError) as caught:
            import_file(store, path, "d", fmt=fmt)
        assert str(caught.value).startswith(error), (str(caught.value), error)
        assert snapshot(store) == before, f"{path.name} changed the store"


def test_parquet_errors_name_the_row(store: Store, tmp_path: Path) -> None:
    rows = [dict(r) for r in LONG_ROWS]
    rows[3]["score"] = 2.0
    path = write_long(tmp_path / "bad.parquet", rows)
    with pytest.raises(ImportFormatError, match=r"bad\.parquet:4: score: 2 is outside \[0, 1\]"):
        import_file(store, path, "d")


def test_usage_mistakes(store: Store, tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"missing\.csv not found; check the path"):
        import_file(store, tmp_path / "missing.csv", "d")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UsageError, match=r"unsupported file type '\.txt'; use \.csv"):
        import_file(store, tmp_path / "x.txt", "d")
    with pytest.raises(UsageError, match="unknown format 'wide'"):
        import_file(store, write_long(tmp_path / "l.csv"), "d", fmt="wide")
    with pytest.raises(UsageError, match="dataset name 'a b' is not allowed"):
        import_file(store, tmp_path / "l.csv", "a b")


def test_csv_saved_by_a_spreadsheet_with_a_byte_order_mark(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "item_id,task,prompt,model,score,cost_usd\r\na,t,p,m,1,0.1\r\n".encode("utf-8-sig")
    )
    assert import_file(store, path, "d").outcomes_inserted == 1


def test_an_import_killed_midway_leaves_all_or_nothing(store: Store, tmp_path: Path) -> None:
    n_items, models = 6000, ["a", "b", "c", "d", "e"]
    frame = pd.DataFrame(
        {
            "item_id": np.repeat([f"i{k}" for k in range(n_items)], len(models)),
            "task": "t",
            "prompt": "p " * 20,
            "model": models * n_items,
            "score": 1.0,
            "cost_usd": 0.001,
        }
    )
    path = tmp_path / "big.parquet"
    frame.to_parquet(path, index=False)
    code = (
        "import sys; from tradeoff.evals.store import Store; from tradeoff.evals.importers import import_file; "
        "import_file(Store(sys.argv[1]), sys.argv[2], 'big')"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(store.path), str(path)])
    time.sleep(1.5)  # somewhere in reading, checking or writing
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    runs, outcomes = table(
        store,
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM outcomes)",
    )[0]
    assert (runs, outcomes) in {(0, 0), (1, len(frame))}
    summary = import_file(store, path, "big")
    assert summary.outcomes_inserted + summary.outcomes_unchanged == len(frame)
    assert table(store, "SELECT count(*), count(DISTINCT (item_id, model)) FROM outcomes") == [
        (len(frame), len(frame))
    ]
