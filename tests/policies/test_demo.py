"""`tradeoff demo` as a newcomer meets it: progress while it works, then the stored policies
and next commands that run as printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.processes import spawn, stop, tradeoff_argv
from tradeoff import main


@pytest.mark.slow
def test_the_demo_streams_its_stages_and_names_the_policies_it_stored(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.duckdb")
    process = spawn(
        tradeoff_argv("demo", "--db", db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        first = process.stderr.readline()
        running = process.poll() is None
        out = process.stdout.read()
        rest = process.stderr.read()
        assert process.wait(timeout=600) == 0, rest
    finally:
        stop(process)
    assert first.startswith("[") and "importing the bundled outcome data" in first
    assert running  # the first stage was told while the demo still worked
    stages = [line for line in (first + rest).splitlines() if line.startswith("[")]
    assert any("fitting llmrouter" in s for s in stages) and stages[-1].endswith("done")
    assert "as policies demo-llmrouter, demo-routerarena" in out
    assert f"tradeoff replay --policy demo-llmrouter --db {db}" in out
    # The next command runs as printed: the stored policy, by name.
    assert main(["replay", "--policy", "demo-llmrouter", "--db", db]) == 0
