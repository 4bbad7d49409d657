"""Reading the prompts of `tradeoff route`: one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path

from tradeoff.evals.errors import require_file
from tradeoff.policies.errors import DataError
from tradeoff.policies.families.base import RouteRequest, flatten_messages


def read_requests(path: Path) -> tuple[list[str], list[RouteRequest]]:
    """(ids, requests) from JSONL lines `{"prompt": str | "messages": [...], "task"?, "id"?}`."""
    require_file(path, "input file", "check the path given to --input")
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    ids, requests = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: not JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(doc, dict):
            raise DataError(f"{path}:{number}: expected a JSON object with prompt or messages")
        if isinstance(doc.get("prompt"), str):
            prompt = doc["prompt"]
        elif isinstance(doc.get("messages"), list):
            prompt = flatten_messages(doc["messages"])
        else:
            raise DataError(f'{path}:{number}: needs "prompt" (a string) or "messages" (a list)')
        task = doc.get("task")
        ids.append(str(doc.get("id", number)))
        requests.append(RouteRequest(prompt, str(task) if task is not None else None))
    return ids, requests
