"""Client mistakes get 4xx in OpenAI's error shape, never a 500; keys are required when set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.settings import KEYS_ENV, Settings, load_api_keys
from tests.router.conftest import NODELAY, sync_client
from tests.router.support import Proxy, write_models
from tests.support.upstream import Upstream

HI = [{"role": "user", "content": "hi"}]
SECRET = "sk-upstream-secret-value-1234"


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    return error


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


def test_oversized_body_is_413(proxy: Proxy) -> None:
    big = {"model": "cheap", "messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    response = httpx.post(f"{proxy.url}/chat/completions", json=big)
    assert assert_error_shape(response, 413)["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while reading
        yield b'{"model": "cheap", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}]}'

    response = httpx.post(f"{proxy.url}/chat/completions", content=chunks())
    assert_error_shape(response, 413)


def test_unknown_routes_and_methods_answer_in_the_same_shape(proxy: Proxy) -> None:
    assert_error_shape(httpx.get(f"{proxy.url}/completions"), 404)
    assert_error_shape(httpx.get(f"{proxy.url}/chat/completions"), 405)


def test_client_errors_are_logged_once(proxy: Proxy) -> None:
    response = httpx.post(f"{proxy.url}/chat/completions", content=b"{oops")
    (row,) = proxy.rows_eventually("request_id = ?", [response.headers["x-tradeoff-request-id"]])
    assert row["status"] == 400 and row["requested_model"] == "" and "JSON" in row["error"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
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
        "max_tokens": JSON,
        "n": JSON,
        "stop": JSON,
        "tools": JSON,
        "tool_choice": JSON,
        "response_format": JSON,
        "metadata": st.fixed_dictionaries({}, optional={"task": JSON}) | JSON,
    },
)


@pytest.mark.slow
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=FIELDS | JSON, raw=st.binary(max_size=40))
def test_fuzzed_bodies_never_get_a_500(proxy: Proxy, body: object, raw: bytes) -> None:
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    with httpx.Client(base_url=proxy.url, timeout=10, transport=transport) as http:
        for content in (json.dumps(body).encode(), raw):
            response = http.post("/chat/completions", content=content)
            if response.status_code >= 400:
                assert response.status_code < 500 or response.status_code in (502, 504)
                assert set(response.json()["error"]) == {"message", "type", "param", "code"}
            else:
                assert response.status_code == 200


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
