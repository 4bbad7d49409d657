"""Human review served: a plan starting with a reviewer is answered by its draft in every
protocol, marked, queued in the store (DuckDB and PostgreSQL), and a verdict becomes a traffic
outcome and a pair the live monitor counts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import yaml

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models
from tests.support.upstream import Rule, Upstream
from tradeoff.cli import main
from tradeoff.evals.store import Store, open_store
from tradeoff.policies.artifact import PolicyArtifact, store_artifact
from tradeoff.policies.families.base import create_policy
from tradeoff.router.settings import LoopSettings, Settings

REVIEW_COST = 0.5
PROMPT = "is this transaction fraud?"


def write_config(path: Path, api_base: str, draft: str | None = "cheap") -> Path:
    write_models(path, api_base, ["cheap", "strong", "fails"])
    doc = yaml.safe_load(path.read_text())
    reviewer: dict[str, Any] = {
        "model_name": "reviewer",
        "tier": "human",
        "review_cost_usd": REVIEW_COST,
        "litellm_params": {"model": "human/reviewer"},
    }
    if draft:
        reviewer["draft"] = draft
    doc["model_list"].append(reviewer)
    path.write_text(yaml.safe_dump(doc))
    return path


def store_policy(store: Store, name: str, model: str) -> None:
    artifact = PolicyArtifact.from_policy(
        name,
        create_policy("single", {"model": model}),
        requirement="accuracy >= 95% of baseline",
        baseline="strong",
        metrics={"accuracy_vs_baseline": 0.99, "n": 100},
    )
    store_artifact(store, artifact)


def settings(tmp: Path, up: Upstream, db: str, **more: Any) -> Settings:
    config = write_config(tmp / "models.yaml", up.url, more.pop("draft", "cheap"))
    store_policy(open_store(db), "triage", "reviewer")
    return Settings(
        stored_policies=("triage",),
        config_path=config,
        db_path=db,  # type: ignore[arg-type]
        log_flush_s=0.05,
        log_prompts=True,
        # Every request would be shadowed, but one a person reviews never is.
        loop=LoopSettings(shadow_rate=1.0, write_every_s=0.02, refresh_s=0.02),
        **more,
    )


def wait_for(condition: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


def reviewed(headers: Any) -> str:
    assert headers["x-tradeoff-review"] == "required"
    assert headers["x-tradeoff-model"] == "cheap"  # the draft answered
    review_id = headers["x-tradeoff-review-id"]
    assert review_id.startswith("rev-")
    return str(review_id)


def ask_every_protocol(proxy: Proxy) -> list[str]:
    """One request routed to review in chat, Responses and Messages, streamed and not."""
    chat = sync_client(proxy.url)
    messages = [{"role": "user", "content": PROMPT}]
    ids = []
    raw = chat.chat.completions.with_raw_response.create(model="triage", messages=messages)  # type: ignore[arg-type]
    assert raw.parse().choices[0].message.content
    ids.append(reviewed(raw.headers))
    with chat.chat.completions.with_streaming_response.create(
        model="triage",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
    ) as streamed:
        ids.append(reviewed(streamed.headers))
        assert "".join(streamed.iter_text())
    raw_r = chat.responses.with_raw_response.create(model="triage", input=PROMPT)
    assert raw_r.parse().output_text
    ids.append(reviewed(raw_r.headers))
    with chat.responses.with_streaming_response.create(
        model="triage", input=PROMPT, stream=True
    ) as streamed_r:
        ids.append(reviewed(streamed_r.headers))
        assert "".join(streamed_r.iter_text())
    claude = anthropic.Anthropic(base_url=proxy.base, api_key="k", max_retries=0, timeout=30)
    raw_m = claude.messages.with_raw_response.create(
        model="triage", max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
    )
    assert raw_m.parse().content
    ids.append(reviewed(raw_m.headers))
    with claude.messages.with_streaming_response.create(
        model="triage",
        max_tokens=64,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
    ) as streamed_m:
        ids.append(reviewed(streamed_m.headers))
        assert "".join(streamed_m.iter_text())
    return ids


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_review_is_served_in_every_protocol_queued_and_its_verdict_moves_the_monitor(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.duckdb") if backend == "duckdb" else request.getfixturevalue("pg_url")
    rules = [Rule(model="cheap", reply="not fraud"), Rule(model="strong")]
    with Upstream(rules) as up, Proxy(settings(tmp_path, up, db)) as proxy:
        ids = ask_every_protocol(proxy)
        assert len(set(ids)) == 6
        # The human tier is never called upstream: only its draft is.
        assert set(up.model_counts) == {"cheap"}
        proxy.flush()
        rows = proxy.rows("review_id IS NOT NULL")
        assert {r["review_id"] for r in rows} == set(ids)
        for row in rows:  # the draft's tokens plus the review's price
            assert row["cost_usd"] > REVIEW_COST and row["policy"] == "triage"

        queue = httpx.get(f"{proxy.base}/v1/reviews", params={"status": "pending"}).json()
        assert [r["review_id"] for r in queue["data"]] == ids  # oldest first
        first = queue["data"][0]
        assert first["answer"] == "not fraud" and PROMPT in first["prompt"]
        assert [r["answer"].strip() for r in queue["data"]] == ["not fraud"] * 6  # streams too
        assert first["draft_model"] == "cheap" and first["reviewer"] == "reviewer"

        loop = proxy.state.loop
        assert loop is not None

        def pairs() -> int:
            watch = loop.watches.get("triage")
            return watch.pairs if watch else 0

        before = pairs()
        url = f"{proxy.base}/v1/reviews/{ids[0]}"
        done = httpx.post(url, json={"correct": False, "answer": "fraud: card cloned"})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "done" and done.json()["score"] == 0.0
        assert httpx.post(url, json={"score": 1}).status_code == 409
        wait_for(lambda: pairs() > before)  # the monitor counted the label

        with proxy.state.request_log.store.connect() as con:
            outcomes = con.execute(
                "SELECT model, score, run_id FROM outcomes WHERE dataset = 'traffic-triage' "
                "AND item_id = ? ORDER BY model",
                [first["request_id"]],
            ).fetchall()
            pair = con.execute(
                "SELECT grader, routed_model, routed_score FROM loop_pairs WHERE request_id = ?",
                [first["request_id"]],
            ).fetchall()
        assert outcomes == [("cheap", 0.0, "review"), ("reviewer", 1.0, "review")]
        assert pair == [("review", "reviewer", 1.0)]

        left = httpx.get(f"{proxy.base}/v1/reviews").json()["data"]
        assert [r["review_id"] for r in left] == ids[1:]
        metrics = httpx.get(f"{proxy.base}/metrics").text
        assert 'tradeoff_reviews{status="pending"} 5' in metrics
        assert 'tradeoff_reviews{status="done"} 1' in metrics
        assert 'tradeoff_review_time_seconds{quantile="0.95"}' in metrics
        status = httpx.get(f"{proxy.base}/tradeoff/status").json()
        reviews = next(p for p in status["policies"] if p["name"] == "triage")["reviews"]
        assert (reviews["pending"], reviews["done"]) == (5, 1)
        assert reviews["time_to_review_s"]["median"] is not None
    # The CLI reads the same store: status shows the counts, `tradeoff reviews` what waits.
    assert main(["status", "--db", db]) == 0
    assert "reviews        5 pending, 1 done" in capsys.readouterr().out
    assert main(["reviews", "--db", db]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed[1:]] == ids[1:]
    assert "not fraud" in listed[1] and "triage" in listed[1]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({}, 400, "score"),
        ({"score": 1.5}, 400, "score"),
        ({"score": "good"}, 400, "score"),
        ({"score": True}, 400, "score"),
        ({"correct": "yes"}, 400, "correct"),
        ({"score": 1, "correct": False}, 400, "correct"),
        ({"correct": True, "answer": ""}, 400, "answer"),
        ({"correct": True, "answer": 7}, 400, "answer"),
    ],
)
def test_bad_verdicts_are_a_4xx_in_openai_shape(
    tmp_path: Path, body: dict[str, Any], status: int, param: str
) -> None:
    with (
        Upstream([Rule(model="cheap")]) as up,
        Proxy(settings(tmp_path, up, str(tmp_path / "r.duckdb"))) as proxy,
    ):
        raw = sync_client(proxy.url).chat.completions.with_raw_response.create(
            model="triage", messages=[{"role": "user", "content": PROMPT}]
        )
        review_id = reviewed(raw.headers)
        proxy.flush()
        answer = httpx.post(f"{proxy.base}/v1/reviews/{review_id}", json=body)
        assert answer.status_code == status
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
        unknown = httpx.post(f"{proxy.base}/v1/reviews/rev-nope", json={"score": 1})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "review_not_found"
        garbage = httpx.post(
            f"{proxy.base}/v1/reviews/{review_id}",
            content=b"{",
            headers={"content-type": "application/json"},
        )
        assert garbage.status_code == 400
        wrong = httpx.get(f"{proxy.base}/v1/reviews", params={"status": "maybe"})
        assert wrong.status_code == 400
        pending = httpx.get(f"{proxy.base}/v1/reviews").json()["data"]
        assert [r["review_id"] for r in pending] == [review_id]  # still waiting


def test_naming_the_reviewer_drafts_or_says_why_not(tmp_path: Path) -> None:
    with Upstream([Rule(model="cheap", reply="draft")]) as up:
        with Proxy(settings(tmp_path, up, str(tmp_path / "r.duckdb"))) as proxy:
            raw = sync_client(proxy.url).chat.completions.with_raw_response.create(
                model="reviewer", messages=[{"role": "user", "content": PROMPT}]
            )
            assert raw.parse().choices[0].message.content == "draft"
            reviewed(raw.headers)
            card = httpx.get(f"{proxy.url}/models/reviewer").json()
            assert (card["tier"], card["draft"], card["review_cost_usd"]) == ("human", "cheap", 0.5)
        assert set(up.model_counts) == {"cheap"}
    with Upstream([Rule(model="cheap")]) as up:
        other = tmp_path / "no-draft"
        other.mkdir()
        with Proxy(settings(other, up, str(other / "r.duckdb"), draft=None)) as proxy:
            answer = httpx.post(
                f"{proxy.url}/chat/completions",
                json={"model": "reviewer", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answer.status_code == 400
            assert answer.json()["error"]["code"] == "review_without_draft"
            # The policy still drafts: its baseline answers.
            routed = httpx.post(
                f"{proxy.url}/chat/completions",
                json={"model": "triage", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert routed.status_code == 200
            assert routed.headers["x-tradeoff-review"] == "required"
            assert routed.headers["x-tradeoff-model"] == "strong"
        assert "reviewer" not in up.model_counts and "human/reviewer" not in up.model_counts


def test_a_failed_draft_is_neither_marked_nor_queued(tmp_path: Path) -> None:
    rules = [Rule(model="fails", status=500), Rule(model="strong", status=500)]
    with (
        Upstream(rules) as up,
        Proxy(settings(tmp_path, up, str(tmp_path / "r.duckdb"), draft="fails")) as proxy,
    ):
        failed = httpx.post(
            f"{proxy.url}/chat/completions",
            json={"model": "triage", "messages": [{"role": "user", "content": PROMPT}]},
        )
        assert failed.status_code >= 500 and "x-tradeoff-review" not in failed.headers
        proxy.flush()
        assert httpx.get(f"{proxy.base}/v1/reviews").json()["data"] == []
        assert proxy.rows("review_id IS NOT NULL") == []
