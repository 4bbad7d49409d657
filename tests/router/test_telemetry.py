"""OpenTelemetry traces of `tradeoff serve`, received by a real OTLP/HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.router.conftest import sync_client
from tests.router.support import serve_process, write_models, write_policy
from tests.support.processes import stop
from tests.support.upstream import Rule, Upstream

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK (tradeoff[otel])")
from tests.support.otlp import Receiver

HI = [{"role": "user", "content": "what is 2 + 2"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream([Rule(model="down", status=500), Rule(model="cheap", reply="4")]) as up:
        yield up


def _serve(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch, endpoint: str):
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap", "strong", "down"])
    write_policy(tmp_path / "p.json", "live", "single", {"model": "cheap"}, baseline="strong")
    write_policy(tmp_path / "f.json", "falls", "single", {"model": "down"}, baseline="strong")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    return serve_process(
        ["--policy", str(tmp_path / "p.json"), "--policy", str(tmp_path / "f.json"),
         "--config", str(config), "--db", str(tmp_path / "db.duckdb")]
    )  # fmt: skip


def test_requests_become_spans_with_genai_attributes_and_the_decision(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Receiver() as receiver:
        process, url, _ = _serve(tmp_path, upstream, monkeypatch, receiver.url)
        try:
            client = sync_client(url)
            ids = []
            for _ in range(4):
                raw = client.chat.completions.with_raw_response.create(model="live", messages=HI)
                ids.append(raw.headers["x-tradeoff-request-id"])
            traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
            continued = client.chat.completions.with_raw_response.create(
                model="falls", messages=HI, extra_headers={"traceparent": traceparent}
            )
            assert continued.headers["x-tradeoff-model"] == "strong"
            process.send_signal(signal.SIGTERM)  # shutdown exports what is queued
            assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        finally:
            stop(process)
    servers = [s for s in receiver.spans if s["attributes"].get("tradeoff.request_id")]
    assert len(servers) == 5
    assert receiver.resources[0]["service.name"] == "tradeoff"
    assert receiver.resources[0]["deployment.environment"] == "test"
    first = next(s for s in servers if s["attributes"]["tradeoff.request_id"] == ids[0])
    attrs = first["attributes"]
    assert first["name"] == "chat live"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "live"
    assert attrs["gen_ai.response.model"] == "cheap"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["tradeoff.policy"] == "live"
    assert attrs["tradeoff.route.reason"] == "single model cheap"
    assert attrs["tradeoff.cost_usd"] > 0
    assert attrs["http.response.status_code"] == 200
    children = [s for s in receiver.spans if s["parent"] == first["span_id"]]
    assert [c["name"] for c in children] == ["chat cheap"]
    assert children[0]["attributes"]["gen_ai.provider.name"] == "hosted_vllm"
    assert children[0]["trace_id"] == first["trace_id"]
    # The client's trace is continued, and the fallback shows as two attempts.
    fell = next(s for s in servers if s["attributes"]["tradeoff.request_id"] == (
        continued.headers["x-tradeoff-request-id"]
    ))  # fmt: skip
    assert (fell["trace_id"], fell["parent"]) == (TRACE_ID, PARENT_ID)
    attempts = [s for s in receiver.spans if s["parent"] == fell["span_id"]]
    assert sorted(a["name"] for a in attempts) == ["chat down", "chat strong"]
    failed = next(a for a in attempts if a["name"] == "chat down")
    assert failed["attributes"]["error.type"] == "500"
    assert fell["attributes"]["tradeoff.fallbacks"] == 1


def test_an_unreachable_collector_never_fails_a_request_and_drops_are_counted(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    process, url, _ = _serve(tmp_path, upstream, monkeypatch, closed)
    try:
        client = sync_client(url)
        for _ in range(5):
            out = client.chat.completions.create(model="live", messages=HI)
            assert out.choices[0].message.content == "4"
        base = url.removesuffix("/v1")
        dropped = 0.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = httpx.get(f"{base}/metrics", timeout=10).text
            line = next(
                ln for ln in text.splitlines() if ln.startswith("tradeoff_otel_spans_dropped")
            )
            dropped = float(line.split()[-1])
            if dropped >= 10:  # 5 request spans and 5 attempt spans
                break
            time.sleep(0.5)
        assert dropped >= 10
        assert "tradeoff_upstream_duration_seconds_bucket" in text
        assert 'tradeoff_proxy_overhead_seconds_count{protocol="chat"} 5' in text
    finally:
        stop(process)


def test_a_shadow_call_is_a_span_of_its_own_linked_to_the_request(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap", "strong"])
    write_policy(tmp_path / "p.json", "live", "single", {"model": "cheap"}, baseline="strong")
    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        process, url, _ = serve_process(
            ["--policy", str(tmp_path / "p.json"), "--config", str(config),
             "--db", str(tmp_path / "db.duckdb"), "--shadow", "1"]
        )  # fmt: skip
        try:
            raw = sync_client(url).chat.completions.with_raw_response.create(
                model="live", messages=HI
            )
            request_id = raw.headers["x-tradeoff-request-id"]
            deadline = time.monotonic() + 30
            base = url.removesuffix("/v1")
            while time.monotonic() < deadline:  # the shadow call runs after the answer
                metrics = httpx.get(f"{base}/metrics", timeout=10).text
                if 'tradeoff_shadow_requests_total{policy="live",outcome="graded"}' in metrics:
                    break
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        finally:
            stop(process)
    request = next(
        s for s in receiver.spans if s["attributes"].get("tradeoff.request_id") == request_id
        and not s["attributes"].get("tradeoff.shadow")
    )  # fmt: skip
    (shadow,) = [s for s in receiver.spans if s["attributes"].get("tradeoff.shadow")]
    assert shadow["name"] == "chat strong"
    assert shadow["parent"] == ""  # not on the client's time
    assert shadow["trace_id"] != request["trace_id"]
    assert shadow["links"] == [(request["trace_id"], request["span_id"])]
