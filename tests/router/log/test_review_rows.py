"""A request routed to review carries its review through the spool and into `reviews`, in the
request row's transaction: once, even when the spool is replayed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.router.log.test_request_log import open_log, row
from tradeoff.router.log.row import QueuedReview, from_line, loggable, to_line

REVIEW = QueuedReview(
    review_id="rev-1", reviewer="reviewer", draft_model="m", prompt="user: hi",
    answer="draft \ud800", review_cost_usd=0.5, policy_version=2, epoch=1, policy_id="pid",
    baseline="strong",
)  # fmt: skip


def test_a_review_round_trips_through_a_spool_line_escaped() -> None:
    reviewed = loggable(row(1, review_id="rev-1", review=REVIEW))
    assert reviewed.review is not None and reviewed.review.answer == "draft \\ud800"
    assert from_line(to_line(reviewed)) == reviewed
    assert from_line(to_line(row(2))).review is None


def test_the_review_is_queued_once_with_its_request(tmp_path: Path) -> None:
    rows = [row(i) for i in range(3)] + [row(9, review_id="rev-1", review=REVIEW, cost_usd=0.6)]
    log = open_log(tmp_path).start()
    for r in rows:
        log.record(r)
    assert log.wait_written(30)
    log.close()
    again = open_log(tmp_path, log.store).start()  # a replayed spool: nothing twice
    for r in rows:
        again.record(replace(r))
    assert again.wait_written(30)
    again.close()
    with log.store.connect(read_only=True) as con:
        queued = con.execute(
            "SELECT review_id, request_id, reviewer, answer, status, draft_cost_usd, baseline "
            "FROM reviews"
        ).fetchall()
        logged = con.execute("SELECT review_id FROM requests WHERE request_id = 'req-9'").fetchall()
    assert len(queued) == 1
    review_id, request_id, reviewer, answer, status, draft_cost, baseline = queued[0]
    assert (review_id, request_id, reviewer, status, baseline) == (
        "rev-1",
        "req-9",
        "reviewer",
        "pending",
        "strong",
    )
    assert answer == "draft \\ud800" and abs(draft_cost - 0.1) < 1e-9
    assert logged == [("rev-1",)]
