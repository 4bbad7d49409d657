"""What a newcomer meets in the first hour (issue 29): formats told from the file, errors that
point where the mistake is, messages that say the next step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeoff import main
from tradeoff.evals.errors import RequirementError
from tradeoff.evals.progress import Progress
from tradeoff.evals.requirement import parse_requirement
from tradeoff.policies.cli import plural


def test_an_items_file_imports_without_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a1", "task": "t", "prompt": "hi", "reference": "x"}\n')
    db = str(tmp_path / "db.duckdb")
    assert main(["import", str(items), "--dataset", "support", "--db", db]) == 0
    assert "(items)" in capsys.readouterr().out


def test_the_wrong_format_names_the_right_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a1", "task": "t", "prompt": "hi"}\n')
    db = str(tmp_path / "db.duckdb")
    assert main(["import", str(items), "--dataset", "s", "--format", "long", "--db", db]) == 1
    assert "looks like items: pass --format items" in capsys.readouterr().err


def test_a_json_line_cut_short_is_reported_on_its_own_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a1", "task": "t", "prompt": "hi"}\n{"id": "a2", "task": \n')
    db = str(tmp_path / "db.duckdb")
    assert main(["import", str(bad), "--dataset", "s", "--format", "items", "--db", db]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:2: not valid JSON (Expecting value at column 22)" in err, err


def test_a_percentage_with_a_space_reads_as_one() -> None:
    (constraint,) = parse_requirement("accuracy >= 95 % baseline").constraints
    assert (constraint.value, constraint.relative) == (0.95, True)


def test_a_bare_number_over_one_says_how_to_write_it() -> None:
    with pytest.raises(RequirementError, match=r"write 0\.95, 95% or 95% of baseline"):
        parse_requirement("accuracy >= 95")


def test_counts_agree_with_their_nouns() -> None:
    assert (plural(1, "point"), plural(23, "point")) == ("1 point", "23 points")


def test_no_eta_before_the_first_calls_in_flight_have_answered(tmp_path: Path) -> None:
    with (tmp_path / "progress.txt").open("w+") as stream:
        progress = Progress(100, stream=stream, warmup=16)
        progress.update()
        assert "ETA ?" in progress.line()
        for _ in range(15):
            progress.update()
        assert "ETA ?" not in progress.line()
