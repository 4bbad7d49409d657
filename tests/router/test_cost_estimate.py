"""Cost is never silently zero: without the upstream's usage, tokens are counted and marked."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.router.support import Proxy
from tradeoff.evals.estimate import count_tokens

HI = [{"role": "user", "content": "count these words please"}]


def test_an_upstream_without_usage_is_logged_with_an_estimated_cost(
    client: OpenAI, proxy: Proxy
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="nousage", messages=HI)
    assert raw.headers["x-tradeoff-cost-estimated"] == "true"
    assert float(raw.headers["x-tradeoff-cost-usd"]) > 0
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert row["cost_estimated"] is True
    assert row["prompt_tokens"] >= count_tokens("count these words please")
    assert row["completion_tokens"] == count_tokens("echo: count these words please")
    assert row["cost_usd"] == pytest.approx(
        row["prompt_tokens"] * 1e-6 + row["completion_tokens"] * 2e-6
    )


def test_a_stream_without_usage_counts_the_streamed_text(client: OpenAI, proxy: Proxy) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="nousage", messages=HI, stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["status"] == 200 and row["cost_estimated"] is True
    assert row["completion_tokens"] == count_tokens(text) > 0
    assert row["cost_usd"] > 0


def test_a_stream_cut_midway_is_billed_for_what_it_sent(client: OpenAI, proxy: Proxy) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="cut", messages=HI, stream=True
    ) as response:
        request_id = response.headers["x-tradeoff-request-id"]
        with pytest.raises(openai.APIError):
            for _ in response.parse():
                pass
    (row,) = proxy.rows_eventually("request_id = ?", [request_id])
    assert row["status"] == 502
    assert row["cost_estimated"] is True
    assert row["completion_tokens"] == count_tokens("one two ")
    assert row["cost_usd"] > 0


def test_usage_from_the_upstream_is_not_an_estimate(client: OpenAI, proxy: Proxy) -> None:
    raw = client.chat.completions.with_raw_response.create(model="cheap", messages=HI)
    assert "x-tradeoff-cost-estimated" not in raw.headers
    (row,) = proxy.rows_eventually("request_id = ?", [raw.headers["x-tradeoff-request-id"]])
    assert row["cost_estimated"] is False and row["prompt_tokens"] == 4  # the stand-in's count


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/responses", {"input": "count these words please"}),
        ("/responses", {"input": "count these words please", "stream": True}),
        ("/messages", {"max_tokens": 20, "messages": HI}),
        ("/messages", {"max_tokens": 20, "messages": HI, "stream": True}),
        ("/embeddings", {"input": "count these words please"}),
        ("/completions", {"prompt": "count these words please", "max_tokens": 5}),
    ],
)
def test_every_route_estimates_what_the_upstream_did_not_count(
    proxy: Proxy, path: str, body: dict[str, object]
) -> None:
    response = httpx.post(f"{proxy.url}{path}", json={"model": "nousage", **body})
    assert response.status_code == 200, response.text
    (row,) = proxy.rows_eventually("request_id = ?", [response.headers["x-tradeoff-request-id"]])
    assert row["cost_estimated"] is True and row["cost_usd"] > 0
    assert row["prompt_tokens"] >= count_tokens("count these words please")
