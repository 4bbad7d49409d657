"""The agent CLIs as a new user runs them: Claude Code (`/v1/messages`) and Codex
(`/v1/responses`) against `tradeoff serve`, whose models speak only chat completions.

The CLIs come from npm (`.ci/run` installs them and sets `TRADEOFF_AGENT_CLIS` to the folder
holding `claude` and `codex`); without them these tests skip. They talk only to the proxy on
127.0.0.1 (telemetry and updates off, a temporary HOME), each run in its own process group,
killed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.router.support import serve_process, write_models, write_policy
from tests.support.processes import spawn, stop
from tests.support.upstream import Rule, Upstream, tool_result_text
from tradeoff.evals.store import Store

pytestmark = pytest.mark.slow  # a real proxy process, and node CLIs that take seconds to start

AGENTS_ENV = "TRADEOFF_AGENT_CLIS"
KEY = "agent-key"
NOTE = "the secret word is banana-42"
CHEAP = (1e-6, 2e-6)  # USD per input and output token (write_models' default)
DEAR = (1e-5, 2e-5)  # the baseline's


def agent(name: str) -> Path:
    """The CLI `name` from $TRADEOFF_AGENT_CLIS, or skip."""
    folder = os.environ.get(AGENTS_ENV)
    if not folder:
        pytest.skip(f"{AGENTS_ENV} is not set: .ci/run installs Claude Code and Codex from npm")
    path = Path(folder) / name
    if not path.exists():
        pytest.skip(f"{path} is missing: .ci/run installs it (npm install --prefix .agents-cli)")
    return path


def answered_from_tool(body: dict[str, Any]) -> str:
    return f"From the file: {tool_result_text(body)}"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("agents")
    (work / "project").mkdir()
    (work / "project" / "notes.txt").write_text(NOTE + "\n")
    return work


@pytest.fixture(scope="module")
def upstream(work: Path) -> Iterator[Upstream]:
    notes = str(work / "project" / "notes.txt")
    rules = [
        Rule(model="cc-cheap", contains="What is 2 + 3?", reply="5"),
        Rule(model="cc-cheap", contains="notes.txt", after_tool=answered_from_tool,
             tool_call={"name": "Read", "arguments": {"file_path": notes}}),
        Rule(model="cx-cheap", contains="What is 2 + 3?", reply="5"),
        Rule(model="cx-cheap", contains="notes.txt", after_tool=answered_from_tool,
             tool_call={"name": "exec_command", "arguments": {"cmd": "cat notes.txt"}}),
    ]  # fmt: skip
    with Upstream(rules) as up:
        yield up


@dataclass(frozen=True)
class Served:
    base: str  # the proxy's URL, without /v1
    db: Path


@pytest.fixture(scope="module")
def served(upstream: Upstream, work: Path) -> Iterator[Served]:
    """`tradeoff serve` (a real process) with a policy per agent."""
    dear: dict[str, Any] = {"input_cost_per_token": DEAR[0], "output_cost_per_token": DEAR[1]}
    names = ["cc-cheap", "cx-cheap", "agent-dear"]
    config = write_models(work / "models.yaml", upstream.url, names, **{"agent-dear": dear})
    policies = [
        write_policy(work / f"{name}.json", name, "single", {"model": model}, baseline="agent-dear")
        for name, model in (("claude-policy", "cc-cheap"), ("codex-policy", "cx-cheap"))
    ]
    args = ["--config", str(config), "--db", str(work / "db.duckdb"), "--api-key", KEY]
    for policy in policies:
        args += ["--policy", str(policy)]
    process, url, _ = serve_process(args)
    try:
        yield Served(url.removesuffix("/v1"), work / "db.duckdb")
    finally:
        stop(process)


def run(argv: list[str], env: dict[str, str], cwd: Path, timeout_s: float = 120) -> str:
    """Run a CLI in its own process group, never longer than `timeout_s`; its stdout. The group
    is killed afterwards, whatever the CLI left running."""
    process = spawn(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop(process)
        raise AssertionError(f"{argv[0]} ran past {timeout_s} s") from None
    finally:
        stop(process)
    assert process.returncode == 0, f"{argv[0]} failed ({process.returncode}):\n{out}\n{err}"
    return out


def rows(served: Served, since: int = 0) -> list[dict[str, Any]]:
    """The request log's rows after the first `since`, once the proxy has written them all."""
    deadline = time.monotonic() + 20
    while httpx.get(f"{served.base}/health").json()["log_pending"]:
        assert time.monotonic() < deadline, "the request log did not drain"
        time.sleep(0.05)
    with Store(served.db).connect(read_only=True) as con:
        cur = con.execute("SELECT * FROM requests ORDER BY created_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()][since:]


def assert_priced(row: dict[str, Any], model: str) -> None:
    assert (row["model"], row["status"]) == (model, 200)
    tokens = (row["prompt_tokens"], row["completion_tokens"])
    assert row["cost_usd"] == pytest.approx(tokens[0] * CHEAP[0] + tokens[1] * CHEAP[1])
    assert row["baseline_cost_usd"] == pytest.approx(tokens[0] * DEAR[0] + tokens[1] * DEAR[1])
    assert not row["cost_estimated"]


def claude(base: str, work: Path, prompt: str, session: str) -> str:
    home = work / f"home-{session}"
    home.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_MODEL": "claude-policy",
        "ANTHROPIC_SMALL_FAST_MODEL": "claude-policy",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-policy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    argv = [str(agent("claude")), "-p", prompt, "--session-id", session, "--allowedTools", "Read"]
    return run(argv, env, work / "project")


def codex(base: str, work: Path, prompt: str) -> str:
    home = work / f"codex-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    (home / "config.toml").write_text(
        'model = "codex-policy"\nmodel_provider = "tradeoff"\n'
        "[model_providers.tradeoff]\n"
        f'name = "tradeoff"\nbase_url = "{base}/v1"\nwire_api = "responses"\n'
        'env_key = "TRADEOFF_PROXY_KEY"\n'
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "TRADEOFF_PROXY_KEY": KEY,
    }
    argv = [str(agent("codex")), "exec", "--skip-git-repo-check", prompt]
    return run(argv, env, work / "project")


def test_claude_code_answers_through_a_chat_model(
    served: Served, work: Path, upstream: Upstream
) -> None:
    agent("claude")
    before = len(rows(served))
    session = str(uuid.uuid4())
    out = claude(served.base, work, "What is 2 + 3?", session)
    assert out.strip() == "5"
    (row,) = [r for r in rows(served, before) if r["protocol"] == "anthropic"]
    assert_priced(row, "cc-cheap")
    assert (row["policy"], row["session"]) == ("claude-policy", session)
    assert "thinking" in row["dropped"]  # adaptive thinking: a hint a chat model cannot take
    assert upstream.requests[-1]["reasoning_effort"]  # its effort, mapped


def test_claude_code_completes_a_tool_loop(served: Served, work: Path, upstream: Upstream) -> None:
    agent("claude")
    before = len(rows(served))
    session = str(uuid.uuid4())
    out = claude(served.base, work, "Read notes.txt and tell me what it says.", session)
    assert NOTE in out
    assert NOTE in tool_result_text(upstream.requests[-1])  # the tool really ran
    turns = [r for r in rows(served, before) if r["protocol"] == "anthropic"]
    assert len(turns) == 2
    for row in turns:
        assert_priced(row, "cc-cheap")
        assert row["session"] == session


def test_codex_answers_through_a_chat_model(served: Served, work: Path, upstream: Upstream) -> None:
    agent("codex")
    before = len(rows(served))
    out = codex(served.base, work, "What is 2 + 3?")
    assert out.strip().splitlines()[-1] == "5"
    (row,) = [r for r in rows(served, before) if r["protocol"] == "responses"]
    assert_priced(row, "cx-cheap")
    assert row["policy"] == "codex-policy"
    assert row["session"] == upstream.requests[-1]["prompt_cache_key"]
    assert "tool web_search" in row["dropped"] and "client_metadata" in row["dropped"]


def test_codex_completes_a_tool_loop(served: Served, work: Path, upstream: Upstream) -> None:
    agent("codex")
    before = len(rows(served))
    out = codex(served.base, work, "Read notes.txt and tell me what it says.")
    assert NOTE in out
    assert NOTE in tool_result_text(upstream.requests[-1])
    turns = [r for r in rows(served, before) if r["protocol"] == "responses"]
    assert len(turns) == 2
    for row in turns:
        assert_priced(row, "cx-cheap")
    assert turns[0]["session"] == turns[1]["session"] == upstream.requests[-1]["prompt_cache_key"]
    # Each run of Codex sends the same first prompt from the same folder, yet is a session of
    # its own: its id, not a hash of that prompt, names it.
    assert turns[0]["session"] not in {r["session"] for r in rows(served)[:before]}
