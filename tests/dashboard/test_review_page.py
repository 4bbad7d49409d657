"""The Review page lists the queue oldest first and records a verdict through the same code as
`POST /v1/reviews/{id}`: the review is done and its label is a traffic outcome."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.copy_store import copy_store
from tradeoff.evals.store import Store

PAGE = "views/review.py"


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_verdict_on_the_review_page_is_recorded(
    seeded_db: Path,
    tmp_path: Path,
    open_page: Callable[[Path | str, str | None], AppTest],
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    # The page writes: a copy, never the shared seeded store.
    db: Path | str = tmp_path / "copy.duckdb"
    if backend == "duckdb":
        shutil.copy(seeded_db, db)
    else:
        db = request.getfixturevalue("pg_url")
        copy_store(Store(seeded_db), Store(db))
    at = open_page(db, PAGE)
    assert not at.exception
    assert "3 requests wait for a review" in at.caption[0].value
    assert "rev-seed-487" in at.caption[1].value
    queue = at.dataframe[0].value
    assert list(queue["Prompt"].str[:22]) == [
        "user: Integrate x^2 fr", "user: Solve for x: 3x ", "user: Is 221 a prime n"
    ]  # fmt: skip
    assert at.selectbox(key="review_chosen").value == "rev-seed-487"  # the oldest first
    at.radio(key="review_kind").set_value("Wrong")
    at.text_area(key="review_answer").input("9, the integral of x^2 from 0 to 3")
    at.button[0].click().run()
    assert not at.exception
    assert any("Verdict recorded" in s.value for s in at.success)
    assert "2 requests wait for a review" in at.caption[0].value
    with Store(db).connect(read_only=True) as con:
        review = con.execute(
            "SELECT status, score, corrected_answer FROM reviews WHERE review_id = 'rev-seed-487'"
        ).fetchone()
        label = con.execute(
            "SELECT model, score, run_id FROM outcomes WHERE dataset = 'traffic-table-math-large' "
            "AND item_id = 'req-0000487' AND run_id = 'review' ORDER BY model"
        ).fetchall()
        pair = con.execute(
            "SELECT grader FROM loop_pairs WHERE request_id = 'req-0000487'"
        ).fetchall()
    assert review == ("done", 0.0, "9, the integral of x^2 from 0 to 3")
    scores = {model: score for model, score, _ in label}
    assert scores.pop("reviewer") == 1.0 and list(scores.values()) == [0.0]  # the draft's
    assert pair == [("review",)]
