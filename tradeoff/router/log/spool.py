"""The spool: a served request's log row is on local disk before its response completes.

The contract, for the request log and anything else that logs served requests:

- `append(line)` writes one line to this process's current segment file with one `os.write` on
  an O_APPEND descriptor. Once it returns, the line survives a kill -9 of the process (the
  kernel holds it; there is no fsync, so a power cut may still lose the last lines).
- Each segment is held under an exclusive `flock` by the one process that writes or replays it,
  for as long as it has unsettled rows. No process replays a file a live process holds, so
  several processes on one store (`--workers N`, two proxies) each keep their own files.
- `settle(segment)` says one of its rows reached the store (or was set aside); a full segment
  whose rows are all settled is deleted. So a file on disk is exactly "rows that may not be in
  the store yet": that is all the bookkeeping there is.
- `claim_orphans()` takes the files no live process holds (left by a crash, or by a shutdown
  that could not reach the store) and returns their lines. Writing them again is idempotent by
  request_id, so each row lands in the store exactly once however often it is replayed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tradeoff.evals.store import resolve_db

__all__ = ["SPOOL_ENV", "Segment", "Spool", "spool_dir"]

log = logging.getLogger("tradeoff.router")
SPOOL_ENV = "TRADEOFF_SPOOL_DIR"


def spool_dir(db: str | os.PathLike[str] | None) -> Path:
    """The spool folder of store `db` (resolved as every command resolves `--db`).

    The one place that decides it. Keyed by the store alone, not by the other serve options:
    the rows belong to the store, so a restart finds them even with another --policy or --port.
    A store file's spool sits beside it (`tradeoff.duckdb.spool/`). A server's URL (PostgreSQL)
    has no folder: its spool goes under $TRADEOFF_SPOOL_DIR, else the user's state folder, named
    by a hash of the URL without its password (a rotated password keeps the same spool).
    $TRADEOFF_SPOOL_DIR, when set, holds file stores' spools too (e.g. a read-only store folder).
    """
    ref = os.fspath(resolve_db(db))
    base = os.environ.get(SPOOL_ENV)
    if "://" in ref:
        url = urlsplit(ref)
        host = url.hostname or ""
        where = f"{url.scheme}://{url.username or ''}@{host}:{url.port or ''}{url.path}"
        digest = hashlib.sha256(where.encode()).hexdigest()[:16]
        state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        root = Path(base) if base else Path(state) / "tradeoff" / "spool"
        return root / f"{url.scheme}-{digest}"
    path = Path(ref).absolute()
    if base:
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        return Path(base) / f"{path.name}-{digest}"
    return path.parent / f"{path.name}.spool"


@dataclass(eq=False)
class Segment:
    """One spool file this process holds (locked) until all its rows are settled."""

    path: Path
    fd: int
    rows: int = 0
    settled: int = 0
    size: int = 0
    sealed: bool = False  # no more appends; deleted once every row is settled
    closed: bool = False


class Spool:
    """This process's segment files in `folder`. Thread-safe: the event loop appends, the
    request log's writer thread settles."""

    def __init__(self, folder: Path, *, max_rows: int = 1000, max_bytes: int = 16 << 20) -> None:
        self.folder = folder
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._current: Segment | None = None
        self._held: list[Segment] = []

    def append(self, line: bytes) -> Segment:
        """Write one newline-terminated line; raises OSError (disk full, folder gone)."""
        with self._lock:
            segment = self._current
            if segment is None or segment.sealed:
                segment = self._current = self._new_segment()
            try:
                view = memoryview(line)
                while view:  # a regular file takes it whole unless the disk is full
                    view = view[os.write(segment.fd, view) :]
            except OSError:
                # A partial line stays the file's last one (replay skips it): append no more.
                self._seal(segment)
                raise
            segment.rows += 1
            segment.size += len(line)
            if segment.rows >= self.max_rows or segment.size >= self.max_bytes:
                self._seal(segment)
            return segment

    def settle(self, segment: Segment, rows: int = 1) -> None:
        """`rows` of `segment`'s rows are in the store (or set aside) for good."""
        with self._lock:
            segment.settled += rows
            if segment.sealed and segment.settled >= segment.rows:
                self._drop(segment)

    def claim_orphans(self) -> list[tuple[Segment, list[bytes]]]:
        """Lock and read every segment no live process holds; settle their rows as usual."""
        found: list[tuple[Segment, list[bytes]]] = []
        if not self.folder.is_dir():
            return found
        with self._lock:
            mine = {s.path for s in self._held}
            for path in sorted(self.folder.glob("segment-*.jsonl")):
                if path in mine:
                    continue
                claimed = self._claim(path)
                if claimed is not None:
                    found.append(claimed)
        return found

    def close(self) -> int:
        """Delete settled segments, release the rest (left for the next start); return how
        many rows stay on disk unsettled."""
        left = 0
        with self._lock:
            for segment in list(self._held):
                if segment.settled >= segment.rows:
                    self._drop(segment)
                    continue
                left += segment.rows - segment.settled
                segment.closed = True
                os.close(segment.fd)  # releases the lock: the next start claims the file
            self._held.clear()
            self._current = None
        return left

    # -- internals (called with the lock held) ----------------------------------------------
    def _new_segment(self) -> Segment:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"segment-{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        temp = self.folder / f"{name}.new"
        # Locked before it gets the name other processes look for, so none can claim it.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(temp, self.folder / name)
        segment = Segment(self.folder / name, fd)
        self._held.append(segment)
        return segment

    def _claim(self, path: Path) -> tuple[Segment, list[bytes]] | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process holds it
            os.close(fd)
            return None
        if os.fstat(fd).st_nlink == 0:  # replayed and deleted since we listed it
            os.close(fd)
            return None
        with os.fdopen(os.dup(fd), "rb") as reader:
            data = reader.read()
        lines = data.split(b"\n")
        torn = lines.pop()  # b"" when the file ends with a whole line
        if torn:
            log.warning("spool %s ends with a partial line (%d bytes): skipped", path, len(torn))
        lines = [line for line in lines if line.strip()]
        segment = Segment(path, fd, rows=len(lines), size=len(data), sealed=True)
        self._held.append(segment)
        if not lines:
            self._drop(segment)
            return None
        return segment, lines

    def _seal(self, segment: Segment) -> None:
        segment.sealed = True
        if segment.settled >= segment.rows:
            self._drop(segment)

    def _drop(self, segment: Segment) -> None:
        if segment.closed:
            return
        # Unlink before closing: while the lock is held nobody else can claim the file.
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        segment.closed = True
        os.close(segment.fd)
        if segment in self._held:
            self._held.remove(segment)
        if segment is self._current:
            self._current = None
