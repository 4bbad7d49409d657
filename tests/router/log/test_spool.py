"""The spool's contract: durable appends, per-process locked files, replay exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tradeoff.router.log.spool import SPOOL_ENV, Spool, spool_dir


def lines(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"i": {i}}}\n'.encode() for i in range(start, start + n)]


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("segment-*.jsonl"))


def test_segments_rotate_and_are_deleted_once_settled(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_rows=3)
    segments = [spool.append(line) for line in lines(7)]
    assert len({id(s) for s in segments}) == 3 and len(files(tmp_path)) == 3
    for segment in segments[:3]:
        spool.settle(segment)
    assert len(files(tmp_path)) == 2  # the first, full and settled, is gone
    for segment in segments[3:6]:
        spool.settle(segment)
    assert len(files(tmp_path)) == 1  # the current one stays until close
    assert spool.close() == 1  # one row not settled: its file stays for the next start
    assert files(tmp_path)[0].read_bytes() == lines(1, 6)[0]


def test_orphans_are_claimed_once_and_never_from_a_live_process(tmp_path: Path) -> None:
    live, crashed = Spool(tmp_path), Spool(tmp_path)
    live.append(b'{"live": 1}\n')
    for line in lines(5):
        crashed.append(line)
    crashed.close()  # a process gone, its rows unsettled
    first, second = Spool(tmp_path), Spool(tmp_path)
    claimed = first.claim_orphans()
    assert [rows for _, rows in claimed] == [[line.rstrip(b"\n") for line in lines(5)]]
    assert second.claim_orphans() == []  # held by `first` while it replays
    segment, rows = claimed[0]
    spool_settle_all(first, segment, len(rows))
    assert second.claim_orphans() == []  # replayed and deleted: nothing left but the live file
    assert len(files(tmp_path)) == 1
    live.close()


def spool_settle_all(spool: Spool, segment: object, n: int) -> None:
    for _ in range(n):
        spool.settle(segment)  # type: ignore[arg-type]


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_file_another_process_holds_is_not_claimed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b'{"a": 1}\n')
    spool.close()
    (path,) = files(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert Spool(tmp_path).claim_orphans() == []
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert len(Spool(tmp_path).claim_orphans()) == 1


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for line in lines(2):
        spool.append(line)
    spool.close()
    (path,) = files(tmp_path)
    with path.open("ab") as f:
        f.write(b'{"i": 2, "cut')  # a write the disk could not finish
    ((_, rows),) = Spool(tmp_path).claim_orphans()
    assert rows == [b'{"i": 0}', b'{"i": 1}']


def test_an_empty_orphan_is_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b'{"a": 1}\n')
    spool.close()
    (path,) = files(tmp_path)
    path.write_bytes(b"")
    assert Spool(tmp_path).claim_orphans() == []
    assert files(tmp_path) == []


def test_the_spool_folder_follows_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SPOOL_ENV, raising=False)
    monkeypatch.delenv("TRADEOFF_DB", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert spool_dir(tmp_path / "a.duckdb") == tmp_path / "a.duckdb.spool"
    monkeypatch.setenv("TRADEOFF_DB", str(tmp_path / "env.duckdb"))
    assert spool_dir(None) == tmp_path / "env.duckdb.spool"
    # A server URL is no folder: a per-user state folder, the same whatever the password.
    one = spool_dir("postgresql://me:secret@db.example:5432/tradeoff")
    two = spool_dir("postgresql://me:rotated@db.example:5432/tradeoff")
    other = spool_dir("postgresql://me:secret@db.example:5432/other")
    assert one == two != other
    assert one.parent == tmp_path / "state" / "tradeoff" / "spool"
    assert "secret" not in str(one)
    monkeypatch.setenv(SPOOL_ENV, str(tmp_path / "spools"))
    assert spool_dir(tmp_path / "a.duckdb").parent == tmp_path / "spools"
    assert spool_dir(tmp_path / "a.duckdb") != spool_dir(tmp_path / "b" / "a.duckdb")
