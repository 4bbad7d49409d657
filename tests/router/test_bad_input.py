"""Client mistakes get 4xx in OpenAI's error shape, never a 500; keys are required when set."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from tests.router.conftest import NODELAY, sync_client
from tests.router.support import Proxy, write_models, write_policy
from tests.support.upstream import Upstream
from tradeoff.router.settings import KEYS_ENV, Settings, load_api_keys

HI = [{"role": "user", "content": "hi"}]
JSON_TYPE = {"content-type": "application/json"}
SECRET = "sk-upstream-secret-value-1234"


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


# Every POST route with a valid body for the module's proxy; /messages answers in Anthropic's
# error shape, the others in OpenAI's.
ROUTES = {
    "/chat/completions": {"model": "cheap", "messages": HI},
    "/responses": {"model": "cheap", "input": "hi"},
    "/messages": {"model": "cheap", "max_tokens": 5, "messages": HI},
    "/embeddings": {"model": "cheap", "input": "hi"},
    "/completions": {"model": "cheap", "prompt": "hi"},
}


PROTOCOLS = {"/chat/completions": "chat", "/responses": "responses", "/messages": "anthropic",
             "/embeddings": "embeddings", "/completions": "completions"}  # fmt: skip


def assert_route_error(path: str, response: httpx.Response, status: int) -> str:
    """The error's message, checking the route's shape; returns a code-or-type to compare."""
    assert response.status_code == status, response.text
    if path == "/messages":
        data = response.json()
        assert data["type"] == "error" and set(data["error"]) == {"type", "message"}
        assert data["error"]["message"] and data["request_id"].startswith("req-")
        return str(data["error"]["message"])
    error = assert_error_shape(response, status)
    return str(error["message"])


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (b"[1, 2]", None, "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model", None),
        (b'{"model": 7, "messages": []}', "model", "invalid_type"),
        (b'{"model": "cheap"}', "messages", "invalid_type"),
        (b'{"model": "cheap", "messages": []}', "messages", "empty_array"),
        (b'{"model": "cheap", "messages": ["hi"]}', "messages[0]", "invalid_type"),
        (b'{"model": "cheap", "messages": [{"role": "boss"}]}', "messages[0].role", None),
        (b'{"model": "cheap", "messages": [{"role": "user", "content": 3}]}', None, None),
        (b'{"model": "cheap", "messages": [{"role": "user"}], "stream": "yes"}', "stream", None),
        (b'{"model": "cheap", "messages": [{"role": "user"}], "max_tokens": 0}', None, None),
        (b'{"model": "cheap", "messages": [{"role": "user"}], "temperature": "hot"}', None, None),
        (b'{"model": "cheap", "messages": [{"role": "user"}], "stop": [1]}', "stop", None),
        (b'{"model": "cheap", "messages": [{"role": "user"}], "tools": {}}', "tools", None),
        (
            b'{"model": "cheap", "messages": [{"role": "user"}], "metadata": {"task": 1}}',
            None,
            None,
        ),
    ],
)
def test_malformed_requests_are_400_naming_the_field(
    proxy: Proxy, body: bytes, param: str | None, code: str | None
) -> None:
    response = httpx.post(
        f"{proxy.url}/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    error = assert_error_shape(response, 400)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert response.headers["x-tradeoff-request-id"].startswith("req-")


def test_unknown_model_is_404_listing_what_exists(proxy: Proxy) -> None:
    client = sync_client(proxy.url)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-17", messages=HI)  # type: ignore[arg-type]
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert "cheap-router" in caught.value.message


@pytest.mark.parametrize("path", ROUTES)
def test_oversized_body_is_413(proxy: Proxy, path: str) -> None:
    big = {**ROUTES[path], "metadata": {"x": "x" * (2 << 20)}}
    response = httpx.post(f"{proxy.url}{path}", json=big)
    assert "larger than" in assert_route_error(path, response, 413)

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while reading
        yield b'{"model": "cheap", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}]}'

    response = httpx.post(f"{proxy.url}/chat/completions", content=chunks(), headers=JSON_TYPE)
    assert_error_shape(response, 413)


def test_unknown_routes_and_methods_answer_in_the_same_shape(proxy: Proxy) -> None:
    assert_error_shape(httpx.get(f"{proxy.url}/assistants"), 404)
    assert_error_shape(httpx.get(f"{proxy.url}/completions"), 405)
    assert_error_shape(httpx.get(f"{proxy.url}/chat/completions"), 405)


def test_client_errors_are_logged_once(proxy: Proxy) -> None:
    response = httpx.post(f"{proxy.url}/chat/completions", content=b"{oops", headers=JSON_TYPE)
    (row,) = proxy.rows_eventually("request_id = ?", [response.headers["x-tradeoff-request-id"]])
    assert row["status"] == 400 and row["requested_model"] == "" and "JSON" in row["error"]


# Raw JSON, as a JavaScript client that cut a string mid-emoji sends it: "\ud83d" decodes to a
# lone surrogate, which json.dumps would never write.
CUT = '"cut mid-emoji \\ud83d"'
# Requests whose input tokens the proxy counts; "slow" answers without echoing the prompt (the
# stand-in upstream cannot encode a lone surrogate back).
COUNTED = {
    "chat max_tokens": ("/chat/completions", '{"model": "slow", "max_tokens": 5, '
                        '"messages": [{"role": "user", "content": CUT}]}'),
    "chat tools": ("/chat/completions", '{"model": "slow", "tools": [{"type": "function", '
                   '"function": {"name": "f"}}], "messages": [{"role": "user", "content": CUT}]}'),
    "messages": ("/messages", '{"model": "slow", "max_tokens": 5, '
                 '"messages": [{"role": "user", "content": CUT}]}'),
    "count_tokens": ("/messages/count_tokens", '{"model": "cheap", '
                     '"messages": [{"role": "user", "content": CUT}]}'),
}  # fmt: skip


def assert_connection_still_serves(http: httpx.Client) -> None:
    """The client's next request (on its kept-alive connection, or a new one if the proxy said
    `Connection: close`) is answered."""
    after = http.post("/chat/completions", json={"model": "cheap", "messages": HI})
    assert after.status_code == 200, after.text


@pytest.mark.parametrize("case", COUNTED)
def test_a_lone_surrogate_in_a_prompt_is_counted_not_a_500(proxy: Proxy, case: str) -> None:
    path, body = COUNTED[case]
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        content = body.replace("CUT", CUT).encode()
        response = http.post(path, content=content, headers=JSON_TYPE)
        assert response.status_code == 200, response.text
        if path == "/messages/count_tokens":
            assert response.json()["input_tokens"] > 0
        assert_connection_still_serves(http)


BAD_FIELDS = [
    ("/chat/completions", '{"model": "cheap", "messages": [{"role": {}, "content": "x"}]}',
     "messages[0].role"),
    ("/responses", '{"model": "cheap", "input": "hi", "include": [{}]}', "include"),
    ("/feedback", '{"request_id": "ID", "thumbs": []}', "thumbs"),
    ("/feedback", '{"request_id": "req-\\ud83d", "score": 1}', "request_id"),
    ("/feedback", '{"request_id": "ID", "score": 1, "comment": "\\ud83d"}', "comment"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "param"), BAD_FIELDS)
def test_wrong_types_and_lone_surrogates_are_a_400_naming_the_field(
    proxy: Proxy, path: str, body: str, param: str
) -> None:
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        if '"ID"' in body:  # a request the proxy answered, so only the field can be wrong
            answered = http.post("/chat/completions", json={"model": "cheap", "messages": HI})
            body = body.replace("ID", answered.headers["x-tradeoff-request-id"])
        response = http.post(path, content=body.encode(), headers=JSON_TYPE)
        assert assert_error_shape(response, 400)["param"] == param
        assert_connection_still_serves(http)


class _Broken:
    """A part of the proxy that fails whatever is asked of it (fault injection)."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("injected failure")


def test_an_unexpected_failure_is_json_in_the_routes_shape_on_every_route(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every route but /health checks the caller's key first: broken, each route answers a 500
    in its protocol's error shape, closing the connection; the client's next request works."""
    routes = [r for r in proxy.app.routes if isinstance(r, Route) and r.path != "/health"]
    with httpx.Client(base_url=proxy.base, timeout=10) as http:
        for route in routes:
            method = sorted(route.methods or {"GET"})[0]
            path = route.path_format.replace("{model}", "cheap").replace("{request_id}", "req-x")
            with monkeypatch.context() as patch:
                patch.setattr(proxy.state, "keys", _Broken())
                response = http.request(method, path, json={"model": "cheap", "messages": HI})
            assert response.status_code == 500, (path, response.text)
            assert response.headers["connection"] == "close", path
            if path.startswith("/v1/messages"):
                assert response.json()["error"]["type"] == "api_error", path
            else:
                assert assert_error_shape(response, 500)["code"] == "internal_error", path
            assert "RuntimeError" in response.text
            assert_connection_still_serves(http)


def test_an_unreachable_store_is_a_json_503(upstream: Upstream, tmp_path: Path) -> None:
    """Routes reading the store answer a JSON 503 while it cannot be opened."""
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap", "strong"])
    policy = write_policy(tmp_path / "p.json", "p", "single", {"model": "cheap"}, baseline="strong")
    db = tmp_path / "db.duckdb"
    settings = Settings(policy_paths=(policy,), config_path=config, db_path=db, log_flush_s=0.05)
    with Proxy(settings) as proxy, httpx.Client(base_url=proxy.base, timeout=30) as http:
        answered = http.post("/v1/chat/completions", json={"model": "p", "messages": HI})
        proxy.flush()
        db.rename(tmp_path / "kept.duckdb")
        db.write_bytes(b"not a database" * 100)
        try:
            for method, path, body in [
                ("GET", "/tradeoff/status", None),
                ("GET", f"/v1/feedback/{answered.headers['x-tradeoff-request-id']}", None),
                ("POST", "/v1/feedback", {"request_id": "req-old", "score": 1}),
            ]:
                response = http.request(method, path, json=body)
                assert assert_error_shape(response, 503)["code"] == "store_unavailable", path
        finally:
            (tmp_path / "kept.duckdb").replace(db)


def test_the_404_names_every_route(proxy: Proxy) -> None:
    message = assert_error_shape(httpx.get(f"{proxy.url}/assistants"), 404)["message"]
    for route in proxy.app.routes:
        assert isinstance(route, Route) and route.path_format in message
    assert "/v1/messages/count_tokens" in message


@pytest.mark.parametrize("path", ROUTES)
def test_deep_nesting_is_a_clean_400(proxy: Proxy, path: str) -> None:
    for content in (
        b"[" * 100_000,
        b'{"model": "cheap", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ):
        response = httpx.post(f"{proxy.url}{path}", content=content, headers=JSON_TYPE)
        assert "deeper than" in assert_route_error(path, response, 400)


def _all_upstream_calls(upstream: Upstream) -> int:
    native = sum(len(v) for v in upstream.native_requests.values())
    return len(upstream.requests) + len(upstream.completion_requests) + native


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_400_not_forwarded(
    proxy: Proxy, upstream: Upstream, value: str, path: str
) -> None:
    before = _all_upstream_calls(upstream)
    content = json.dumps(ROUTES[path])[:-1] + f', "temperature": {value}}}'
    response = httpx.post(f"{proxy.url}{path}", content=content.encode(), headers=JSON_TYPE)
    assert "not a JSON number" in assert_route_error(path, response, 400)
    assert _all_upstream_calls(upstream) == before


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_bodies_not_labelled_json_are_415(
    proxy: Proxy, content_type: str | None, path: str
) -> None:
    content = json.dumps(ROUTES[path]).encode()
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(f"{proxy.url}{path}", content=content, headers=headers)
    assert "application/json" in assert_route_error(path, response, 415)
    (row,) = proxy.rows_eventually("request_id = ?", [response.headers["x-tradeoff-request-id"]])
    assert (row["status"], row["protocol"]) == (415, PROTOCOLS[path])


@pytest.mark.parametrize("path", ROUTES)
def test_valid_bodies_are_answered_on_every_route(proxy: Proxy, path: str) -> None:
    response = httpx.post(f"{proxy.url}{path}", json=ROUTES[path])
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
def test_json_with_parameters_or_any_case_is_accepted(proxy: Proxy, content_type: str) -> None:
    content = json.dumps({"model": "cheap", "messages": HI}).encode()
    response = httpx.post(
        f"{proxy.url}/chat/completions", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def impatient_proxy(
    upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """A proxy that waits at most 0.5 s for a request body."""
    work: Path = tmp_path_factory.mktemp("impatient")
    config = write_models(work / "models.yaml", upstream.url, ["cheap"])
    settings = Settings(
        config_path=config, db_path=work / "db.duckdb", body_timeout_s=0.5, log_flush_s=0.05
    )
    with Proxy(settings) as proxy:
        yield proxy


def raw_request(
    proxy: Proxy, declared: int, sent: bytes, path: str = "/chat/completions"
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.sendall(
        f"POST /v1{path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n".encode()
        + f"content-length: {declared}\r\n\r\n".encode()
        + sent
    )
    return sock


@pytest.mark.parametrize("path", ROUTES)
def test_a_client_stalling_mid_upload_gets_408(impatient_proxy: Proxy, path: str) -> None:
    started = time.monotonic()
    before = len(impatient_proxy.rows("status = 408"))
    with raw_request(impatient_proxy, 1000, b'{"model": "cheap", ', path) as sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
    assert time.monotonic() - started < 2.0
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    data = json.loads(payload)
    if path == "/messages":
        assert data["error"]["type"] == "timeout_error"
    else:
        assert set(data["error"]) == {"message", "type", "param", "code"}
        assert data["error"]["code"] == "request_timeout"
    rows = impatient_proxy.rows_eventually("status = 408", count=before + 1)
    assert len(rows) == before + 1


@pytest.mark.parametrize("path", ROUTES)
def test_a_client_leaving_mid_upload_is_logged_499(impatient_proxy: Proxy, path: str) -> None:
    before = len(impatient_proxy.rows("status = 499"))
    with raw_request(impatient_proxy, 1000, b'{"model": "cheap", "messages": ', path):
        time.sleep(0.1)
    rows = impatient_proxy.rows_eventually("status = 499", count=before + 1)
    assert len(rows) == before + 1 and "disconnected" in rows[-1]["error"]
    assert not impatient_proxy.rows("status >= 500")


# Strings a client can send: lone surrogates (JSON's \\ud800 escape), control characters, NUL.
NASTY = st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u2028", "\x1b[31m", "\ufeff"]) | st.text(
    st.characters(categories=["Cs", "Cc"]) | st.characters(), max_size=8
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | NASTY
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY, inner, max_size=3),
    max_leaves=10,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["cheap", "nope", "", "by-task"]) | JSON,
        "messages": st.lists(
            st.fixed_dictionaries(
                {}, optional={"role": st.sampled_from(["user", "x"]) | JSON, "content": JSON}
            )
            | JSON,
            max_size=3,
        )
        | JSON,
        "stream": JSON,
        "temperature": JSON,
        "max_tokens": st.integers(min_value=1, max_value=50) | JSON,
        "n": JSON,
        "stop": JSON,
        "tools": JSON,
        "tool_choice": JSON,
        "response_format": JSON,
        "metadata": st.fixed_dictionaries({}, optional={"task": JSON}) | JSON,
    },
)
# Spliced into a valid request as raw text: what json.dumps would never write.
RAW_VALUES = (
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1" * 5000, "1e-999"])
    | st.integers(min_value=1, max_value=20_000).map(lambda n: "[" * n + "]" * n)
    | st.integers(min_value=1, max_value=20_000).map(lambda n: '{"a":' * n + "1" + "}" * n)
)


def check_answer(response: httpx.Response, path: str = "/chat/completions") -> None:
    if response.status_code >= 400:
        assert response.status_code < 500 or response.status_code in (502, 504), response.text
        if path.startswith("/messages"):
            assert set(response.json()["error"]) == {"type", "message"}
        else:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    else:
        assert response.status_code == 200


@pytest.mark.slow
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=FIELDS | JSON, raw=st.binary(max_size=40), value=RAW_VALUES)
def test_fuzzed_bodies_never_get_a_500_and_are_all_logged(
    proxy: Proxy, body: object, raw: bytes, value: str
) -> None:
    spliced = (
        '{"model": "cheap", "messages": [{"role": "user", "content": "hi"}], "temperature": '
        + value
        + "}"
    ).encode()
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    with httpx.Client(base_url=proxy.url, timeout=10, transport=transport) as http:
        for content in (json.dumps(body).encode(), raw, spliced):
            check_answer(http.post("/chat/completions", content=content, headers=JSON_TYPE))
    proxy.flush()  # every row, whatever its strings, reached the store
    assert proxy.state.request_log.dead_letters.rows == 0


ITEMS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["message", "function_call", "function_call_output",
                                     "reasoning", "item_reference"]) | JSON,
            "role": st.sampled_from(["user", "assistant", "developer", "x"]) | JSON,
            "content": JSON | st.lists(st.fixed_dictionaries(
                {}, optional={"type": st.sampled_from(["input_text", "input_image", "x"]) | JSON,
                              "text": JSON, "image_url": JSON})),
            "call_id": JSON, "output": JSON, "name": JSON, "arguments": JSON,
        },
    )
    | JSON,
    max_size=3,
)  # fmt: skip
BLOCKS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking"])
            | JSON,
            "text": JSON, "source": JSON, "id": JSON, "input": JSON, "tool_use_id": JSON,
            "content": JSON, "is_error": JSON,
        },
    )
    | JSON,
    max_size=3,
)  # fmt: skip
ROUTE_FIELDS = {
    "/responses": st.fixed_dictionaries({}, optional={
        "model": st.sampled_from(["cheap", "nope", "by-task"]) | JSON, "input": JSON | ITEMS,
        "instructions": JSON, "tools": JSON, "tool_choice": JSON, "text": JSON, "store": JSON,
        "previous_response_id": JSON, "max_output_tokens": JSON, "stream": JSON,
        "include": JSON, "reasoning": JSON, "metadata": JSON, "temperature": JSON}),
    "/messages": st.fixed_dictionaries({}, optional={
        "model": st.sampled_from(["cheap", "nope", "by-task"]) | JSON, "max_tokens": JSON,
        "messages": st.lists(st.fixed_dictionaries({}, optional={
            "role": st.sampled_from(["user", "assistant"]) | JSON,
            "content": JSON | BLOCKS}) | JSON, max_size=3) | JSON,
        "system": JSON, "tools": JSON, "tool_choice": JSON, "stream": JSON, "metadata": JSON,
        "thinking": JSON, "stop_sequences": JSON, "temperature": JSON}),
    "/embeddings": st.fixed_dictionaries({}, optional={
        "model": st.sampled_from(["cheap", "by-task"]) | JSON, "input": JSON,
        "stream": JSON}),
    "/completions": st.fixed_dictionaries({}, optional={
        "model": st.sampled_from(["cheap", "by-task"]) | JSON, "prompt": JSON,
        "max_tokens": JSON, "n": JSON, "stream": JSON}),
    "/messages/count_tokens": st.fixed_dictionaries({}, optional={
        "model": st.sampled_from(["cheap", "nope", "by-task"]) | JSON,
        "messages": st.lists(st.fixed_dictionaries({}, optional={
            "role": st.sampled_from(["user", "assistant"]) | JSON,
            "content": JSON | BLOCKS}) | JSON, max_size=3) | JSON,
        "system": JSON, "tools": JSON}),
    "/feedback": st.fixed_dictionaries({}, optional={
        "request_id": st.sampled_from(["req-x", ""]) | JSON, "score": JSON,
        "thumbs": st.sampled_from(["up", "down"]) | JSON, "comment": JSON}),
}  # fmt: skip
# A valid body for each fuzzed route, to splice raw values into.
VALID = {
    **ROUTES,
    "/messages/count_tokens": {"model": "cheap", "messages": HI},
    "/feedback": {"request_id": "req-x", "score": 1},
}


@pytest.mark.slow
@pytest.mark.parametrize("path", ROUTE_FIELDS)
def test_fuzzed_bodies_on_every_route_never_get_a_500(proxy: Proxy, path: str) -> None:
    @settings(max_examples=60, deadline=None)
    @given(body=ROUTE_FIELDS[path] | JSON, raw=st.binary(max_size=40), value=RAW_VALUES)
    def check(body: object, raw: bytes, value: str) -> None:
        spliced = (json.dumps(VALID[path])[:-1] + ', "temperature": ' + value + "}").encode()
        transport = httpx.HTTPTransport(socket_options=NODELAY)
        with httpx.Client(base_url=proxy.url, timeout=10, transport=transport) as http:
            for content in (json.dumps(body).encode(), raw, spliced):
                check_answer(http.post(path, content=content, headers=JSON_TYPE), path)

    check()
    proxy.flush()  # every row, whatever its strings, reached the store
    assert proxy.state.request_log.dead_letters.rows == 0


@pytest.fixture(scope="module")
def keyed_proxy(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A proxy with client keys, in front of a model whose provider key is SECRET."""
    import os

    work: Path = tmp_path_factory.mktemp("keyed")
    os.environ["TRADEOFF_TEST_PROVIDER_KEY"] = SECRET
    config = write_models(
        work / "models.yaml",
        upstream.url,
        ["cheap", "fails"],
        cheap={"api_key": "os.environ/TRADEOFF_TEST_PROVIDER_KEY"},
        fails={"api_key": "os.environ/TRADEOFF_TEST_PROVIDER_KEY"},
    )
    settings = Settings(
        config_path=config,
        db_path=work / "db.duckdb",
        api_keys=frozenset({"client-key-1", "client-key-2"}),
        log_flush_s=0.05,
    )
    with Proxy(settings) as proxy:
        yield proxy
    del os.environ["TRADEOFF_TEST_PROVIDER_KEY"]


def test_without_a_valid_key_401(keyed_proxy: Proxy) -> None:
    for key in ("wrong", "client-key-1x"):
        client = sync_client(keyed_proxy.url, api_key=key)
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="cheap", messages=HI)
        assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    response = httpx.post(f"{keyed_proxy.url}/chat/completions", json={"model": "cheap"})
    assert_error_shape(response, 401)
    assert_error_shape(httpx.get(f"{keyed_proxy.url}/models"), 401)
    assert_error_shape(httpx.get(f"{keyed_proxy.base}/metrics"), 401)
    assert httpx.get(f"{keyed_proxy.base}/health").status_code == 200
    for key in ("client-key-1", "client-key-2"):
        out = sync_client(keyed_proxy.url, api_key=key).chat.completions.create(
            model="cheap", messages=HI
        )
        assert out.choices[0].message.content == "echo: hi"


def test_api_keys_from_options_env_and_file_are_stripped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEYS_ENV, "env-1, env-2 ,")
    (tmp_path / "keys").write_text("# comment\n file-1 \n\n")
    keys = load_api_keys((" opt-1 ",), tmp_path / "keys")
    assert keys == {"opt-1", "env-1", "env-2", "file-1"}


def test_provider_keys_reach_the_upstream_but_never_the_client_or_log(
    keyed_proxy: Proxy, upstream: Upstream
) -> None:
    client = sync_client(keyed_proxy.url, api_key="client-key-1")
    # The upstream echoes the prompt; a prompt containing the key must come back masked.
    out = client.chat.completions.create(
        model="cheap", messages=[{"role": "user", "content": f"repeat {SECRET}"}]
    )
    assert upstream.headers[-1]["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in (out.choices[0].message.content or "")
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fails", messages=HI)
    assert SECRET not in caught.value.response.text
    keyed_proxy.flush()
    with keyed_proxy.state.request_log.store.connect() as con:
        dump = str(con.execute("SELECT * FROM requests").fetchall())
    assert SECRET not in dump


def test_cors_is_off_unless_origins_are_named(
    proxy: Proxy, upstream: Upstream, tmp_path: Path
) -> None:
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    response = httpx.options(f"{proxy.url}/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap"])
    settings = Settings(
        config_path=config, db_path=tmp_path / "db", cors_origins=("https://app.example",)
    )
    with Proxy(settings) as open_proxy:
        response = httpx.options(f"{open_proxy.url}/chat/completions", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = httpx.options(
            f"{open_proxy.url}/chat/completions", headers={**preflight, "origin": "https://evil"}
        )
        assert "access-control-allow-origin" not in other.headers
