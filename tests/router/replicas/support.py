"""Replicas for tests: real `tradeoff serve` processes on one store (the `replicas` fixture is
in tests/router/conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Replica:
    process: subprocess.Popen[str]
    url: str  # the OpenAI base URL (…/v1)
    stderr: list[str]

    @property
    def base(self) -> str:
        return self.url.removesuffix("/v1")

    def get(self, path: str) -> Any:
        return httpx.get(self.base + path, timeout=10).json()

    def metric(self, line_start: str) -> float:
        text = httpx.get(self.base + "/metrics", timeout=10).text
        found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


Start = Callable[[list[str]], Replica]
