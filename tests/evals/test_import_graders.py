"""A grader name in an imported file must name a grader: a typo fails the import, on its line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tradeoff.evals.errors import ImportFormatError
from tradeoff.evals.graders import GRADERS
from tradeoff.evals.importers import import_file
from tradeoff.evals.store import Store

Cli = Callable[..., tuple[int, str, str]]


def items_file(path: Path, graders: list[str]) -> Path:
    lines = [
        {"id": f"q{i}", "task": "t", "prompt": f"question {i}", "reference": "1", "grader": g}
        for i, g in enumerate(graders)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_typo_fails_the_whole_import_naming_the_line_and_the_graders(
    store: Store, tmp_path: Path, run_cli: Cli
) -> None:
    path = items_file(tmp_path / "items.jsonl", ["exact", "numeric", "exactt"])
    with pytest.raises(ImportFormatError) as caught:
        import_file(store, path, "d", fmt="items")
    message = str(caught.value)
    assert message.startswith(f"{path}:3: grader: unknown grader 'exactt'; use one of ")
    assert message.endswith(", or module:function for your own")
    assert all(name in message for name in GRADERS if name != "callable")
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM items").fetchone() == (0,)
    code, _, err = run_cli("import", str(path), "--dataset", "d", "--format", "items", "--db",
                           str(store.path))  # fmt: skip
    assert code == 1 and err.startswith(f"error: {path}:3: grader: unknown grader 'exactt'")
    assert err.count("\n") == 1


def test_the_long_format_checks_graders_too(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text(
        "item_id,task,prompt,model,score,cost_usd,grader\n"
        "a,t,p,m,1,0.1,contains\nb,t,q,m,1,0.1,\nc,t,r,m,1,0.1,Contains\n"
    )
    with pytest.raises(ImportFormatError, match=r"o\.csv:4: grader: unknown grader 'Contains'"):
        import_file(store, path, "d")


def test_built_in_and_custom_graders_import(store: Store, tmp_path: Path) -> None:
    # A custom grader's module need not be importable yet: the eval imports it when it runs.
    graders = ["exact", "json_schema", "my_project.graders:strict_match"]
    summary = import_file(store, items_file(tmp_path / "ok.jsonl", graders), "d", fmt="items")
    assert summary.items == 3
    with store.connect(read_only=True) as con:
        stored = con.execute("SELECT grader FROM items ORDER BY item_id").fetchall()
    assert [g for (g,) in stored] == graders
