"""The load test: 2,000 requests at concurrency 64, 200 streaming, with upstream faults.

Zero requests hang, every failure is a clean OpenAI-shaped error, and the log of the real
`tradeoff serve` process holds exactly 2,000 rows after its SIGTERM.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import openai
import pytest

from tests.router.conftest import async_client
from tests.router.support import serve_process, write_models, write_policy
from tests.support.processes import stop
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.store import Store

TOTAL, CONCURRENCY, STREAMING = 2000, 64, 200
FAULTS = [
    Rule(model="lt-a", contains="flaky", status=503),  # falls back to lt-b
    Rule(contains="dead", status=500),  # both models fail: a clean 502
    Rule(contains="limit", status=429, retry_after=0.05),  # a clean 429 after a retry
    Rule(contains="cut", cut_stream_after=1, reply="x y z"),  # streams die midway
    Rule(contains="hang", hang=True),  # the proxy's 2 s timeout must answer 504
]


def prompt_for(i: int, rng: random.Random) -> str:
    kind = rng.choices(["ok", "flaky", "dead", "limit", "cut", "hang"], [86, 5, 3, 3, 2, 1])[0]
    return f"{kind} request {i}"


@pytest.mark.slow
def test_2000_requests_with_faults(tmp_path: Path) -> None:
    with Upstream(list(FAULTS)) as upstream:
        config = write_models(tmp_path / "models.yaml", upstream.url, ["lt-a", "lt-b"])
        write_policy(tmp_path / "p.json", "mix", "test_ordered", {"models": ["lt-a", "lt-b"]})
        process, url, stderr = serve_process(
            ["--timeout", "2", "--policy", str(tmp_path / "p.json"), "--config", str(config),
             "--db", str(tmp_path / "db.duckdb")]
        )  # fmt: skip
        try:
            try:
                outcomes = asyncio.run(drive(url))
            except AssertionError:
                Path("/tmp/load_server_stderr.log").write_text("".join(stderr))
                raise
        finally:
            stop(process, timeout_s=60)  # SIGTERM: the server flushes its log, then exits
    assert not [line for line in stderr if "Traceback" in line], "".join(stderr)
    assert sum(outcomes.values()) == TOTAL
    assert outcomes["hung"] == 0 and outcomes["unclean"] == 0, outcomes
    assert outcomes["ok"] > TOTAL * 0.8 and outcomes["502"] and outcomes["504"], outcomes
    assert outcomes["stream-error"] and outcomes["429"], outcomes
    with Store(tmp_path / "db.duckdb").connect(read_only=True) as con:
        rows, ids, streams = con.execute(
            "SELECT count(*), count(DISTINCT request_id), count(*) FILTER (WHERE stream) "
            "FROM requests"
        ).fetchone()  # type: ignore[misc]
    assert rows == ids == TOTAL
    assert streams == STREAMING


async def drive(url: str) -> Counter[str]:
    client = async_client(url)
    client = client.with_options(timeout=10)  # a request still open after 10 s counts as hung
    rng = random.Random(7)
    jobs = [(i, prompt_for(i, rng), i % (TOTAL // STREAMING) == 0) for i in range(TOTAL)]
    outcomes: Counter[str] = Counter()
    details: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(prompt: str, stream: bool) -> str:
        messages = [{"role": "user", "content": prompt}]
        try:
            if stream:
                chunks = await client.chat.completions.create(
                    model="mix",
                    messages=messages,
                    stream=True,  # type: ignore[arg-type]
                )
                text = "".join([c.choices[0].delta.content or "" async for c in chunks])
            else:
                out = await client.chat.completions.create(model="mix", messages=messages)  # type: ignore[arg-type]
                text = out.choices[0].message.content or ""
            expected = "x y z" if prompt.startswith("cut") else f"echo: {prompt}"
            if text.strip() == expected:
                return "ok"
            details.append(f"{prompt}: wrong text {text!r}")
            return "unclean"
        except openai.APITimeoutError:
            return "hung"
        except openai.APIStatusError as exc:
            error = exc.body if isinstance(exc.body, dict) else {}
            if {"message", "type", "param", "code"} <= set(error):
                return str(exc.status_code)
            details.append(f"{prompt}: {exc.status_code} {exc.body!r}")
            return "unclean"
        except openai.APIError as exc:  # an error event inside a 200 stream
            if stream and isinstance(exc.body, dict) and "code" in exc.body:
                return "stream-error"
            details.append(f"{prompt}: {type(exc).__name__} {exc}")
            return "unclean"

    async def gated(prompt: str, stream: bool) -> None:
        async with gate:
            outcomes[await one(prompt, stream)] += 1

    await asyncio.gather(*(gated(p, s) for _, p, s in jobs))
    await client.close()
    assert not details, details[:10]
    return outcomes
