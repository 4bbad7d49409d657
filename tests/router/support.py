"""Start the real proxy on 127.0.0.1 (uvicorn in a thread, port 0) for tests."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from tests.support.processes import spawn, stop
from tradeoff.policies.families.base import FAMILIES, Plan, Policy, RouteRequest, register_family
from tradeoff.router.app import build_state, create_app
from tradeoff.router.cli import KEEP_ALIVE_S
from tradeoff.router.settings import Settings
from tradeoff.router.state import ProxyState


def write_models(
    path: Path,
    api_base: str,
    names: list[str],
    entries: dict[str, dict[str, Any]] | None = None,
    **extra: Any,
) -> Path:
    """A models.yaml of OpenAI-compatible models at `api_base`, each priced $1/$2 per 1M tokens;
    `extra[name]` adds litellm_params, `entries[name]` top-level keys (api, capabilities)."""
    written = []
    for name in names:
        params: dict[str, Any] = {
            "model": f"hosted_vllm/{name}",
            "api_base": api_base,
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
        }
        params.update(extra.get(name, {}))
        entry = {"model_name": name, "litellm_params": params, "tier": "local"}
        written.append({**entry, **(entries or {}).get(name, {})})
    path.write_text(yaml.safe_dump({"model_list": written}))
    return path


def write_policy(path: Path, name: str, family: str, params: dict[str, Any], **more: Any) -> Path:
    """A policy artifact file in the shape `policies.artifact` reads."""
    doc = {
        "version": 1,
        "name": name,
        "family": family,
        "params": params,
        "models": more.pop("models", []),
        "dataset": None,
        "data_hash": None,
        "requirement": None,
        "baseline": more.pop("baseline", None),
        "metrics": {},
        "created_at": "2026-01-01T00:00:00Z",
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return path


class Proxy:
    """The proxy app under uvicorn in a background thread; `stop()` runs the lifespan shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: ProxyState = build_state(settings)
        self.app = create_app(settings, self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/v1"

    def start(self) -> Proxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, timeout_keep_alive=KEEP_ALIVE_S
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("proxy did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every finished request's row is in the store."""
        assert self.state.request_log.wait_written(timeout_s), "request log did not flush"

    def rows_eventually(
        self, where: str, params: list[Any] | None = None, count: int = 1, timeout_s: float = 10
    ) -> list[dict[str, Any]]:
        """The rows matching `where`, once at least `count` exist (a streamed request is logged
        just after its last byte reached the client, so the client can be a moment ahead)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.flush()
            rows = self.rows(where, params)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.02)

    def rows(self, where: str = "true", params: list[Any] | None = None) -> list[dict[str, Any]]:
        with self.state.request_log.store.connect() as con:
            cur = con.execute(f"SELECT * FROM requests WHERE {where}", params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class OrderedPolicy(Policy):
    """A test family: always the same plan, `models` in order (fallback chains, cascades).

    Registered only while router tests run (`register_test_family`), so the policies package's
    "every registered family is under contract" test never sees it.
    """

    family = "test_ordered"

    def __init__(self, models: list[str], verifier: str | None = None) -> None:
        self._models = tuple(models)
        self.verifier = verifier

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def plan(self, request: RouteRequest) -> Plan:
        return Plan(models=self._models, verifier=self.verifier, reason="fixed order")

    def to_params(self) -> dict[str, Any]:
        return {"models": list(self._models), "verifier": self.verifier}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> OrderedPolicy:
        return cls(list(params["models"]), params.get("verifier"))


def serve_process(args: list[str]) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `tradeoff serve ARGS --port 0` (test families registered); return it, its URL and
    its stderr lines (drained by a thread: a full pipe would block the server). It runs with
    default signal dispositions in a group of its own; stop it with `processes.stop`."""
    code = (
        "import sys, tradeoff, tests.router.support as s; s.register_test_family(); "
        "sys.exit(tradeoff.main(sys.argv[1:]))"
    )
    process = spawn(
        [sys.executable, "-c", code, "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    match = re.search(r"listening on (http://\S+/v1)", first)
    if not match:
        stop(process)
        raise RuntimeError(f"tradeoff serve did not start: {first}{process.stderr.read()}")
    lines: list[str] = []
    stream = process.stderr
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    return process, match.group(1), lines


def register_test_family() -> None:
    register_family(OrderedPolicy)


def unregister_test_family() -> None:
    FAMILIES.pop(OrderedPolicy.family, None)
