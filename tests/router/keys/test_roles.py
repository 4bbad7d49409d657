"""Key roles: an admin key reads /metrics and /tradeoff/status and rates any request; a client key
(plain or named) gets 403 there and rates only its own requests; with no key, all is open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

import tradeoff
from tests.router.conftest import sync_client
from tests.router.support import Proxy, serve_process, write_models, write_policy
from tests.support.processes import stop
from tests.support.upstream import Upstream
from tradeoff.evals.errors import ConfigError
from tradeoff.router.keys.auth import KeyCheck, plain_key_name
from tradeoff.router.settings import ADMIN_KEYS_ENV, Settings, load_admin_keys

ADMIN, PLAIN_A, PLAIN_B, NAMED = "sk-admin", "sk-plain-a", "sk-plain-b", "sk-named"
HI = [{"role": "user", "content": "hi"}]
ADMIN_ROUTES = ("/metrics", "/tradeoff/status")


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def settings(work: Path, upstream: Upstream, **keys: object) -> Settings:
    config = write_models(work / "models.yaml", upstream.url, ["cheap", "strong"])
    policy = write_policy(work / "p.json", "desk", "single", {"model": "cheap"}, baseline="strong")
    return Settings(
        policy_paths=(policy,),
        config_path=config,
        db_path=work / "db.duckdb",
        log_flush_s=0.05,
        **keys,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def keyed(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """Two plain client keys, a named one (`--keys`) and an admin key."""
    work: Path = tmp_path_factory.mktemp("roles")
    keys = work / "keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [{"name": "team-n", "key": "os.environ/K_ROLE"}]}))
    config = settings(
        work,
        upstream,
        api_keys=frozenset({PLAIN_A, PLAIN_B}),
        admin_keys=frozenset({ADMIN}),
        keys_path=keys,
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("K_ROLE", NAMED)
        proxy = Proxy(config)
    with proxy:
        yield proxy


def ask(proxy: Proxy, key: str) -> str:
    raw = sync_client(proxy.url, api_key=key).chat.completions.with_raw_response.create(
        model="desk", messages=HI
    )
    return raw.headers["x-tradeoff-request-id"]


def rate(proxy: Proxy, key: str, request_id: str) -> httpx.Response:
    body = {"request_id": request_id, "score": 1}
    return httpx.post(f"{proxy.base}/v1/feedback", json=body, headers=auth(key))


def openai_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_the_admin_routes_need_an_admin_key(keyed: Proxy) -> None:
    for path in ADMIN_ROUTES:
        assert httpx.get(keyed.base + path, headers=auth(ADMIN)).status_code == 200
        for key in (PLAIN_A, NAMED):
            error = openai_error(httpx.get(keyed.base + path, headers=auth(key)), 403)
            assert error["code"] == "admin_key_required"
        openai_error(httpx.get(keyed.base + path), 401)
    for key in (ADMIN, PLAIN_A, NAMED):  # every key is a client of the model APIs
        ask(keyed, key)
        assert httpx.get(f"{keyed.url}/models", headers=auth(key)).status_code == 200


def test_a_client_key_rates_only_its_own_requests(keyed: Proxy) -> None:
    mine, theirs, named, admins = (ask(keyed, k) for k in (PLAIN_A, PLAIN_B, NAMED, ADMIN))
    assert rate(keyed, PLAIN_A, mine).status_code == 200
    assert rate(keyed, NAMED, named).status_code == 200
    for key, other in [(PLAIN_A, theirs), (PLAIN_A, named), (PLAIN_A, admins), (NAMED, mine)]:
        error = openai_error(rate(keyed, key, other), 404)  # as if unknown: nothing leaks
        assert error["code"] == "request_not_found"
        read = httpx.get(f"{keyed.base}/v1/feedback/{other}", headers=auth(key))
        assert openai_error(read, 404)["code"] == "feedback_not_found"
    for request_id in (mine, theirs, named, admins):  # the admin rates and reads any
        assert rate(keyed, ADMIN, request_id).status_code == 200
        read = httpx.get(f"{keyed.base}/v1/feedback/{request_id}", headers=auth(ADMIN))
        assert read.status_code == 200
    assert httpx.get(f"{keyed.base}/v1/feedback/{mine}", headers=auth(PLAIN_A)).is_success
    keyed.flush()
    owners = {r["request_id"]: r["key_name"] for r in keyed.rows()}
    assert owners[mine] == plain_key_name(PLAIN_A) and PLAIN_A not in owners[mine]
    assert (owners[named], owners[admins]) == ("team-n", None)


def test_with_client_keys_but_no_admin_key_nobody_reads_the_admin_routes(
    upstream: Upstream, tmp_path: Path
) -> None:
    with Proxy(settings(tmp_path, upstream, api_keys=frozenset({PLAIN_A}))) as proxy:
        for path in ADMIN_ROUTES:
            error = openai_error(httpx.get(proxy.base + path, headers=auth(PLAIN_A)), 403)
            assert "--admin-key" in str(error["message"])
        assert rate(proxy, PLAIN_A, ask(proxy, PLAIN_A)).status_code == 200


def test_with_no_key_every_route_is_open(upstream: Upstream, tmp_path: Path) -> None:
    with Proxy(settings(tmp_path, upstream)) as proxy:
        for path in ADMIN_ROUTES:
            assert httpx.get(proxy.base + path).status_code == 200
        request_id = ask(proxy, "anything")
        assert rate(proxy, "anything", request_id).status_code == 200


def test_admin_keys_come_from_options_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ADMIN_KEYS_ENV, "env-1, env-2 ,")
    assert load_admin_keys((" opt-1 ",)) == {"opt-1", "env-1", "env-2"}


def test_a_key_cannot_be_both_admin_and_client() -> None:
    with pytest.raises(ConfigError, match="also a client key"):
        KeyCheck(frozenset({"same"}), frozenset({"same"}))


def test_serve_takes_admin_keys_from_options_and_env(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_models(tmp_path / "models.yaml", upstream.url, ["cheap"])
    monkeypatch.setenv(ADMIN_KEYS_ENV, "admin-env")
    process, url, _ = serve_process(
        ["--config", str(config), "--db", str(tmp_path / "db.duckdb"),
         "--api-key", "client", "--admin-key", "admin-opt"]
    )  # fmt: skip
    try:
        base = url.removesuffix("/v1")
        for key, status in [("admin-opt", 200), ("admin-env", 200), ("client", 403)]:
            assert httpx.get(f"{base}/metrics", headers=auth(key)).status_code == status, key
    finally:
        stop(process)


def test_serve_help_says_who_reads_the_admin_routes(capsys: pytest.CaptureFixture[str]) -> None:
    assert tradeoff.main(["serve", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--admin-key" in out and "TRADEOFF_ADMIN_KEYS" in out
    assert "no admin key, nobody reads them" in out
