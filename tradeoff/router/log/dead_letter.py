"""Rows the store refused, set aside in a JSON-lines file so they never block the rows after them.

Each line is `{"at": ..., "error": ..., "row": {...}}` (or `"line"`: the raw text of a spool line
that was not a row). Nothing reads the file back automatically: a row lands here only after the
store refused it on its own while accepting its neighbours, so replaying it blindly would fail
again. Its path is in the proxy's log and in `/health`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["DeadLetters"]

log = logging.getLogger("tradeoff.router")


class DeadLetters:
    """Appends refused rows to `path`; `rows` counts the lines in the file (this process's and
    those it found at start)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            with path.open("rb") as existing:
                self.rows = sum(
                    chunk.count(b"\n") for chunk in iter(lambda: existing.read(1 << 20), b"")
                )
        except FileNotFoundError:
            self.rows = 0

    def add(self, line: bytes, error: str) -> None:
        """Set aside one spool line (a row's JSON, or whatever text the line held)."""
        record: dict[str, object] = {"at": datetime.now(UTC).isoformat(), "error": error}
        try:
            record["row"] = json.loads(line)
        except ValueError:
            record["line"] = line.decode("utf-8", "backslashreplace")
        data = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            self.rows += 1
        log.error("request log: a row the store refused (%s) was set aside in %s", error, self.path)
