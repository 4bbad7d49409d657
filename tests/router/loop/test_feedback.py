"""POST /v1/feedback: recorded against the logged request, idempotent, validated, authenticated,
and still there after a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.router.conftest import sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Upstream
from tradeoff.router.settings import Settings

KEY = "sk-feedback"
AUTH = {"authorization": f"Bearer {KEY}"}
ADMIN = {"authorization": "Bearer sk-admin"}
JSON = {"content-type": "application/json"}


def settings(tmp: Path, up: Upstream, **more: object) -> Settings:
    config = write_models(tmp / "models.yaml", up.url, ["cheap", "strong"])
    policy = write_policy(
        tmp / "p.json", "helpdesk", "single", {"model": "cheap"}, baseline="strong"
    )
    return Settings(
        policy_paths=(policy,),
        config_path=config,
        db_path=tmp / "fb.duckdb",
        api_keys=frozenset({KEY}),
        admin_keys=frozenset({"sk-admin"}),
        **more,  # type: ignore[arg-type]
    )


def ask(proxy: Proxy) -> str:
    raw = sync_client(proxy.url, api_key=KEY).chat.completions.with_raw_response.create(
        model="helpdesk", messages=[{"role": "user", "content": "reset my password"}]
    )
    return raw.headers["x-tradeoff-request-id"]


def test_feedback_round_trips_is_idempotent_and_survives_a_restart(
    tmp_path: Path, upstream: Upstream
) -> None:
    # A log that flushes rarely: the feedback arrives before the request's row is in the store.
    config = settings(tmp_path, upstream, log_flush_s=30.0)
    with Proxy(config) as proxy:
        request_id = ask(proxy)
        with proxy.state.request_log.store.connect() as con:
            assert con.execute("SELECT count(*) FROM requests").fetchone() == (0,)
        url = f"{proxy.base}/v1/feedback"
        first = httpx.post(url, json={"request_id": request_id, "score": 0.25}, headers=AUTH)
        assert first.status_code == 200, first.text
        assert first.json()["score"] == 0.25
        again = {"request_id": request_id, "thumbs": "up", "comment": "fixed it"}
        assert httpx.post(url, json=again, headers=AUTH).status_code == 200
    with Proxy(config) as restarted:  # a new process would see the same store
        got = httpx.get(f"{restarted.base}/v1/feedback/{request_id}", headers=AUTH)
        assert got.status_code == 200
        doc = got.json()
        assert (doc["score"], doc["thumbs"], doc["comment"]) == (1.0, "up", "fixed it")
        down = {"request_id": request_id, "thumbs": "down"}
        assert httpx.post(f"{restarted.base}/v1/feedback", json=down, headers=AUTH).is_success
        with restarted.state.request_log.store.connect() as con:
            rows = con.execute("SELECT score, thumbs FROM feedback").fetchall()
            outcome = con.execute(
                "SELECT model, score, run_id FROM outcomes WHERE dataset = 'traffic-helpdesk' "
                "AND item_id = ?",
                [request_id],
            ).fetchall()
        assert rows == [(0.0, "down")]  # one row per request: the last verdict wins
        assert outcome == [("cheap", 0.0, "feedback")]  # the answering model's outcome


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"request_id": "req-nope", "score": 1}, 404, "request_id"),
        ({"score": 1}, 400, "request_id"),
        ({"request_id": "ID", "score": 1.5}, 400, "score"),
        ({"request_id": "ID", "score": -0.1}, 400, "score"),
        ({"request_id": "ID", "score": "good"}, 400, "score"),
        ({"request_id": "ID", "score": True}, 400, "score"),
        ({"request_id": "ID"}, 400, "score"),
        ({"request_id": "ID", "thumbs": "sideways"}, 400, "thumbs"),
        ({"request_id": "ID", "score": 1, "comment": 7}, 400, "comment"),
    ],
)
def test_bad_feedback_is_a_4xx_in_openai_shape(
    tmp_path: Path, upstream: Upstream, body: dict[str, object], status: int, param: str
) -> None:
    with Proxy(settings(tmp_path, upstream)) as proxy:
        request_id = ask(proxy)
        if body.get("request_id") == "ID":
            body = {**body, "request_id": request_id}
        answer = httpx.post(f"{proxy.base}/v1/feedback", json=body, headers=AUTH)
        assert answer.status_code == status
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
        with proxy.state.request_log.store.connect() as con:
            assert con.execute("SELECT count(*) FROM feedback").fetchone() == (0,)


def test_feedback_and_status_need_a_key(tmp_path: Path, upstream: Upstream) -> None:
    with Proxy(settings(tmp_path, upstream)) as proxy:
        request_id = ask(proxy)
        url = f"{proxy.base}/v1/feedback"
        body = {"request_id": request_id, "score": 1}
        assert httpx.post(url, json=body).status_code == 401
        assert httpx.get(f"{url}/{request_id}").status_code == 401
        garbage = httpx.post(url, content=b"\xff{", headers={**AUTH, **JSON})
        assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "invalid_json"
        form = httpx.post(url, content=b"request_id=x", headers=AUTH)  # no JSON content type
        assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
        assert httpx.get(f"{url}/{request_id}", headers=AUTH).status_code == 404
        assert httpx.post(url, json=body, headers=AUTH).status_code == 200
        status = f"{proxy.base}/tradeoff/status"
        assert httpx.get(status).status_code == 401
        assert httpx.get(status, headers=AUTH).status_code == 403  # a client key
        (entry,) = httpx.get(status, headers=ADMIN).json()["policies"]
        assert (entry["name"], entry["state"], entry["requests"]) == ("helpdesk", "collecting", 1)
