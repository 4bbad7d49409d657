"""Review: the requests waiting for a person, oldest first, and a verdict form.

A request a policy routed to a human reviewer was answered with a draft (the client has it);
here a reviewer reads the prompt and the draft and says whether it was right, or scores it,
optionally with the corrected answer. The verdict goes through the same code as
`POST /v1/reviews/{id}` (policies/loop/reviews.py) and becomes the request's label.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from tradeoff.dashboard import data
from tradeoff.evals.errors import TradeoffError
from tradeoff.policies.loop.reviews import pending_reviews, submit_verdict
from tradeoff.policies.versions import now

SHOWN = 200
PREVIEW = 90
COLUMNS = {
    "Waiting": st.column_config.TextColumn(width="small"),
    "Policy": st.column_config.TextColumn(width="medium"),
    "Prompt": st.column_config.TextColumn(width="medium"),
    "Draft answer": st.column_config.TextColumn(width="medium"),
    "Drafted by": st.column_config.TextColumn(width="small"),
}
VERDICTS = ("Correct", "Wrong", "Score")


def _age(created: str | None, at: datetime) -> str:
    if not created:
        return ""
    seconds = max(0.0, (at - datetime.fromisoformat(created)).total_seconds())
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _preview(text: str | None) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= PREVIEW else flat[: PREVIEW - 1] + "…"


def _queue_table(waiting: list[dict[str, Any]], at: datetime) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Waiting": [_age(r["created_at"], at) for r in waiting],
            "Policy": [r["policy"] or "— named directly" for r in waiting],
            "Prompt": [_preview(r["prompt"]) for r in waiting],
            "Draft answer": [_preview(r["answer"]) for r in waiting],
            "Drafted by": [r["draft_model"] or "" for r in waiting],
        }
    )


def _submit(review_id: str, body: dict[str, Any]) -> None:
    try:
        data.write(submit_verdict, review_id, body, at=now())
    except TradeoffError as exc:
        st.session_state["review_message"] = ("error", str(exc))
        return
    st.session_state["review_message"] = ("success", f"Verdict recorded for {review_id}.")


def _verdict_form(review: dict[str, Any]) -> None:
    st.caption(
        f"Review `{review['review_id']}` of request `{review['request_id']}` "
        f"(the same verdict by API: `POST /v1/reviews/{review['review_id']}`)."
    )
    left, right = st.columns(2)
    left.markdown("**Prompt**")
    left.code(review["prompt"] or "(the prompt was not kept)", language=None, wrap_lines=True)
    right.markdown(f"**Draft answer** (by {review['draft_model'] or 'unknown'})")
    right.code(review["answer"] or "(no text)", language=None, wrap_lines=True)
    with st.form(f"verdict-{review['review_id']}", clear_on_submit=True):
        kind = st.radio("Verdict", VERDICTS, horizontal=True, key="review_kind")
        score = st.slider(
            "Score (used when the verdict is Score)", 0.0, 1.0, 1.0, 0.05, key="review_score"
        )
        corrected = st.text_area(
            "Corrected answer (optional)",
            key="review_answer",
            help="What the answer should have been; the request counts as answered right "
            "after review.",
        )
        if st.form_submit_button("Submit verdict", type="primary"):
            body: dict[str, Any] = (
                {"score": score} if kind == "Score" else {"correct": kind == "Correct"}
            )
            if corrected.strip():
                body["answer"] = corrected
            _submit(review["review_id"], body)
            st.rerun()


def render() -> None:
    st.title("Review")
    data.require_store()
    message = st.session_state.pop("review_message", None)
    if message is not None:
        getattr(st, message[0])(message[1])
    waiting = data.library(pending_reviews, SHOWN)
    if not waiting:
        st.info(
            "No request waits for a review. A policy sends requests here when its plan names "
            "a reviewer (`tier: human` in models.yaml); the proxy answers them with a draft "
            "meanwhile."
        )
        st.stop()
    at = now()
    more = " (the oldest shown)" if len(waiting) == SHOWN else ""
    st.caption(
        f"{len(waiting):,} requests wait for a review{more}, oldest first. Each was "
        "answered with its draft; your verdict becomes its label for the live monitor."
    )
    st.dataframe(
        _queue_table(waiting, at), hide_index=True, use_container_width=True, column_config=COLUMNS
    )
    st.subheader("Verdict")
    labels = {
        r["review_id"]: f"{_age(r['created_at'], at)} ago · {r['policy'] or 'named directly'} · "
        f"{_preview(r['prompt'])[:60]}"
        for r in waiting
    }
    chosen = st.selectbox(
        "Request", list(labels), format_func=labels.__getitem__, key="review_chosen"
    )
    _verdict_form(next(r for r in waiting if r["review_id"] == chosen))


if __name__ == "__main__":
    render()
