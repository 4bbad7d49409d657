"""The stand-in itself behaves as scripted (so other tests can rely on it)."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from tests.support.upstream import Rule, Upstream


def test_scripted_answers_failures_and_streams() -> None:
    rules = [
        Rule(model="flaky", status=429, fail_times=1, retry_after=0.1),
        Rule(contains="capital", reply="Paris"),
        Rule(model="cut", cut_stream_after=1, reply="a b c d"),
    ]
    with Upstream(rules) as up:
        client = OpenAI(base_url=up.url, api_key="x", max_retries=0)
        out = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "the capital of France?"}]
        )
        assert out.choices[0].message.content == "Paris"
        assert out.usage is not None and out.usage.completion_tokens == 1
        r = httpx.post(f"{up.url}/chat/completions", json={"model": "flaky", "messages": []})
        assert r.status_code == 429 and r.headers["retry-after"] == "0.1"
        r = httpx.post(f"{up.url}/chat/completions", json={"model": "flaky", "messages": []})
        assert r.status_code == 200
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x y"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.strip() == "echo: x y"
        with pytest.raises(Exception):  # noqa: B017 - the cut surfaces as a transport error
            list(
                client.chat.completions.create(
                    model="cut", messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
        assert up.model_counts["flaky"] == 2
