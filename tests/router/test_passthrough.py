"""Embeddings, legacy completions and model cards: passed through to the configured model named
by `model` (official `openai` client), logged and priced like every route, never routed."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.router.support import Proxy
from tests.support.upstream import Upstream


def test_embeddings_pass_through_and_are_logged(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="cheap", input=["one two", "three"], dimensions=4
    )
    out = raw.parse()
    assert [len(d.embedding) for d in out.data] == [4, 4]
    sent = upstream.native_requests["embeddings"][-1]
    assert sent == {"model": "cheap", "input": ["one two", "three"], "dimensions": 4,
                    "encoding_format": "base64"}  # fmt: skip
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["protocol"], row["model"], row["policy"], row["status"]) == (
        "embeddings",
        "cheap",
        None,
        200,
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 0)  # the stand-in's words
    assert row["cost_usd"] == pytest.approx(3e-6)


def test_completions_pass_through_plain_and_streamed(
    client: OpenAI, proxy: Proxy, upstream: Upstream
) -> None:
    raw = client.completions.with_raw_response.create(
        model="strong", prompt="Once upon", max_tokens=5
    )
    assert raw.parse().choices[0].text == "echo"
    assert upstream.completion_requests[-1]["prompt"] == "Once upon"
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert (row["protocol"], row["model"], row["prompt_tokens"]) == ("completions", "strong", 2)
    with client.completions.with_streaming_response.create(
        model="strong", prompt="Once upon", max_tokens=5, stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        text = "".join(c.choices[0].text for c in response.parse() if c.choices)
    assert text.strip() == "echo"
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["stream"] and row["status"] == 200 and row["completion_tokens"] == 1


def test_a_policy_is_not_a_pass_through_target(client: OpenAI, upstream: Upstream) -> None:
    before = len(upstream.native_requests["embeddings"])
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="cheap-router", input="x")
    assert caught.value.body["code"] == "model_not_routable"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x")
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="cheap", input=[{"not": "text"}])  # type: ignore[list-item]
    assert caught.value.body["param"] == "input"  # type: ignore[index]
    assert len(upstream.native_requests["embeddings"]) == before


def test_a_failing_model_is_retried_not_swapped(client: OpenAI, upstream: Upstream) -> None:
    before = upstream.model_counts["flaky"]
    out = client.embeddings.create(model="flaky", input="x")  # fails once, then answers
    assert len(out.data) == 1
    assert upstream.model_counts["flaky"] == before + 2


def test_models_retrieve_answers_cards(client: OpenAI, proxy: Proxy) -> None:
    policy = client.models.retrieve("cheap-router")
    assert policy.id == "cheap-router" and policy.owned_by == "tradeoff-policy"
    model = client.models.retrieve("cheap")
    assert model.owned_by == "tradeoff"
    assert model.model_extra is not None and model.model_extra["tier"] == "local"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    assert httpx.get(f"{proxy.url}/models/cheap").json()["capabilities"]["tools"] is None
