"""Waiting for a vLLM server to be ready: GET /health, then GET /v1/models.

/health answers 200 as soon as the HTTP server is up; /v1/models lists the served model once the
engine is loaded, which is what the registry needs (the served name and its context length).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tradeoff.evals.local.errors import ServerStartError
from tradeoff.evals.local.process import VllmProcess, tail


@dataclass(frozen=True)
class ServedModel:
    """One entry of the server's /v1/models."""

    id: str
    max_model_len: int | None = None


def root_url(url: str) -> str:
    """`http://h:p`, `http://h:p/` and `http://h:p/v1` all name the server `http://h:p`."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def served_models(base_url: str, *, timeout_s: float = 5.0) -> list[ServedModel]:
    """The models a ready server lists; raises httpx errors if it is not ready."""
    response = httpx.get(f"{root_url(base_url)}/v1/models", timeout=timeout_s)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json().get("data") or []
    return [
        ServedModel(id=str(m["id"]), max_model_len=m.get("max_model_len"))
        for m in data
        if isinstance(m, dict) and m.get("id")
    ]


def _ready(base_url: str) -> list[ServedModel] | None:
    try:
        if httpx.get(f"{base_url}/health", timeout=5.0).status_code != 200:
            return None
        return served_models(base_url) or None
    except (httpx.HTTPError, ValueError):
        return None


def wait_until_healthy(
    base_url: str,
    *,
    process: VllmProcess | None = None,
    timeout_s: float = 600.0,
    poll_s: float = 0.5,
) -> list[ServedModel]:
    """Poll until the server is ready; fail early, with its last log lines, if it exits."""
    base_url = root_url(base_url)
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and (code := process.exited()) is not None:
            raise ServerStartError(f"vLLM exited with code {code} during start; {_log(process)}")
        models = _ready(base_url)
        if models:
            return models
        if time.monotonic() >= deadline:
            log = f"; {_log(process)}" if process is not None else ""
            raise ServerStartError(
                f"vLLM at {base_url} was not ready after {timeout_s:.0f}s (GET /health, "
                f"/v1/models); raise --timeout or check the server{log}"
            )
        time.sleep(poll_s)


def _log(process: VllmProcess) -> str:
    """The server's last log lines, on one line (the CLI prints errors on one line)."""
    lines = [line.strip() for line in tail(process.log_path).splitlines() if line.strip()]
    return f"last lines of {process.log_path}: {' | '.join(lines) or '(empty log)'}"
