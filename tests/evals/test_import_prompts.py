"""One item id, two different prompts (public data has this): two items, never one merged item."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tradeoff.evals.errors import ImportFormatError
from tradeoff.evals.importers import import_file
from tradeoff.evals.store import Store

RENAMED = re.compile(r"^q1~[0-9a-f]{8}$")

# q1's second prompt on lines 4-5; its outcomes are samples 1, as if repeats of the first.
ROWS = [
    {"item_id": "q1", "task": "t", "prompt": "What is 2+2?", "model": "m1", "sample": 0, "score": 1},
    {"item_id": "q1", "task": "t", "prompt": "What is 2+2?", "model": "m2", "sample": 0, "score": 0},
    {"item_id": "q1", "task": "t", "prompt": "Name a prime.", "model": "m1", "sample": 1, "score": 0},
    {"item_id": "q1", "task": "t", "prompt": "Name a prime.", "model": "m2", "sample": 1, "score": 1},
    {"item_id": "q2", "task": "t", "prompt": "Capital of France?", "model": "m1", "sample": 0, "score": 1},
]  # fmt: skip


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    records = [dict(r, cost_usd=0.001) for r in records]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        pd.DataFrame(records).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("suffix", "lines"), [(".csv", (4, 2)), (".jsonl", (3, 1))])
def test_long_keeps_both_prompts_as_items_and_reimports_idempotently(
    store: Store, tmp_path: Path, suffix: str, lines: tuple[int, int]
) -> None:
    path = write(tmp_path / f"o{suffix}", ROWS)
    first = import_file(store, path, "d")
    items = dict(rows(store, "SELECT prompt, item_id FROM items"))
    assert items["What is 2+2?"] == "q1" and items["Capital of France?"] == "q2"
    renamed = items["Name a prime."]
    assert RENAMED.match(renamed)
    assert first.warnings == [
        f"{path}:{lines[0]}: item 'q1' has a different prompt than on line {lines[1]}; imported "
        f"as a separate item {renamed!r}"
    ]
    # The second prompt's outcomes belong to it, not to q1 as extra samples.
    assert rows(store, "SELECT item_id, model, sample, score FROM outcomes ORDER BY 1, 2") == [
        ("q1", "m1", 0, 1.0),
        ("q1", "m2", 0, 0.0),
        (renamed, "m1", 1, 0.0),
        (renamed, "m2", 1, 1.0),
        ("q2", "m1", 0, 1.0),
    ]
    again = import_file(store, path, "d")
    assert (again.items_inserted, again.outcomes_inserted, again.outcomes_updated) == (0, 0, 0)
    assert again.warnings == first.warnings
    assert rows(store, "SELECT count(*) FROM items") == [(3,)]


def test_the_derived_id_depends_on_the_prompt_not_on_the_rows_around_it(
    store: Store, tmp_path: Path
) -> None:
    one = import_file(store, write(tmp_path / "a.csv", ROWS), "a")
    other = import_file(store, write(tmp_path / "b.csv", [ROWS[4], *ROWS[:4]]), "b")
    name = re.compile(r"'(q1~[0-9a-f]{8})'$")
    assert name.findall(one.warnings[0]) == name.findall(other.warnings[0])


def test_chat_messages_count_as_the_prompt(store: Store, tmp_path: Path) -> None:
    def chat(text: str, model: str) -> dict[str, Any]:
        messages = [{"role": "user", "content": text}]
        return {"id": "c", "task": "t", "messages": messages, "model": model, "score": 1}

    path = tmp_path / "chat.jsonl"
    path.write_text(
        "".join(
            json.dumps({**r, "item_id": r.pop("id"), "cost_usd": 0.0}) + "\n"
            for r in [chat("hi", "m1"), chat("hi", "m2"), chat("bye", "m1")]
        )
    )
    summary = import_file(store, path, "d")
    assert len(summary.warnings) == 1
    assert "chat.jsonl:3: item 'c' has a different prompt than on line 1" in summary.warnings[0]
    assert rows(store, "SELECT count(*) FROM items") == [(2,)]


def test_routerbench_keeps_both_prompts(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "rb.csv"
    path.write_text(
        "sample_id,prompt,eval_name,m1,m1|total_cost\n"
        "s1,first,e,1,0.1\ns2,other,e,0,0.1\ns1,second,e,0,0.1\n"
    )
    summary = import_file(store, path, "rb", fmt="routerbench")
    assert summary.items == 3 and summary.outcomes_inserted == 3
    assert summary.warnings[0].startswith(
        f"{path}:4: item 's1' has a different prompt than on line 2"
    )
    assert rows(store, "SELECT prompt FROM items WHERE item_id = 's1'") == [("first",)]


def test_items_keep_both_prompts_but_an_exact_repeat_still_fails(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "items.jsonl"
    lines = [{"id": "q1", "task": "t", "prompt": "a"}, {"id": "q1", "task": "t", "prompt": "b"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = import_file(store, path, "d", fmt="items")
    assert summary.items == 2 and "items.jsonl:2: item 'q1'" in summary.warnings[0]
    path.write_text("".join(json.dumps(line) + "\n" for line in [*lines, lines[1]]))
    with pytest.raises(ImportFormatError, match=r"items\.jsonl:3: id: item 'q1~[0-9a-f]{8}'"):
        import_file(store, path, "d", fmt="items")


def test_a_derived_id_already_in_the_file_fails_instead_of_merging(
    store: Store, tmp_path: Path
) -> None:
    first = import_file(store, write(tmp_path / "a.csv", ROWS), "a")
    taken = re.findall(r"'(q1~[0-9a-f]{8})'$", first.warnings[0])[0]
    clash = [*ROWS, dict(ROWS[4], item_id=taken, prompt="something else")]
    with pytest.raises(ImportFormatError, match=rf"b\.csv:4: item_id: .*{taken}.* is taken"):
        import_file(store, write(tmp_path / "b.csv", clash), "b")


def test_the_cli_prints_the_warning_and_succeeds(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    path = write(tmp_path / "o.csv", ROWS)
    code, out, err = run_cli("import", str(path), "--dataset", "d", "--db", str(tmp_path / "s.db"))
    assert code == 0 and "items     3 (3 new)" in out
    assert err.startswith(f"warning: {path}:4: item 'q1' has a different prompt than on line 2")
