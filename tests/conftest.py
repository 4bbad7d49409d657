"""Fixtures every test package shares."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.support import processes

Spawn = Callable[..., subprocess.Popen[Any]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`spawn(argv, **popen)`: start a child with default signal dispositions in a group of its
    own (tests/support/processes.py); every group started is stopped when the test ends."""
    started: list[subprocess.Popen[Any]] = []

    def start(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        process = processes.spawn(argv, **popen)
        started.append(process)
        return process

    yield start
    for process in started:
        processes.stop(process)
