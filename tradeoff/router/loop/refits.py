"""`tradeoff serve --refit-every DURATION`: refit the policies served by name on a schedule.

Each refit is `tradeoff refit --policy NAME --promote` in a child process: a fit is seconds to
minutes of CPU, which must not share the event loop (or the GIL) with client requests. What it
promotes reaches this proxy like any promotion, through the policy book's poll of the store.
Pinned versions (`NAME@VERSION`) and policy files are not refitted. Stopping cancels the
schedule and kills a refit in progress (nothing is promoted halfway: promotion is one
transaction at the end of a refit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tradeoff.evals.store import DB_ENV, Store, resolve_db

log = logging.getLogger("tradeoff.loop")
CODE = "import sys, tradeoff; sys.exit(tradeoff.main(sys.argv[1:]))"


class RefitSchedule:
    """Refits `names` every `every_s` seconds against the store `db` (as `--db` names it)."""

    def __init__(self, names: list[str], every_s: float, db: str | Path | None) -> None:
        self.names, self.every_s, self.db = names, every_s, str(resolve_db(db))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.names:
            self._task = asyncio.ensure_future(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            for name in self.names:
                if await asyncio.to_thread(self._due, name):
                    await self.refit(name)

    def _due(self, name: str) -> bool:
        """Whether no process on the store (another replica, another worker) started a refit
        of `name` in the last half period: replicas share one schedule. A refit is then marked
        started; two replicas that mark it at the same moment are serialised by the refit's
        own lock (the second one stops at once)."""
        store = Store(self.db)
        try:
            started = store.counter_updated_at("refit-started", name)
            recent = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=self.every_s / 2)
            if started is not None and started > recent:
                return False
            store.increment("refit-started", name, 1)
        except Exception as exc:  # the store is away: the refit could not run either
            log.warning("scheduled refit of %s skipped: %s", name, exc)
            return False
        return True

    async def refit(self, name: str) -> int:
        """One refit in a child process; logs its last line and returns its exit status."""
        args = ["refit", "--policy", name, "--promote"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CODE,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # The store by environment, not argument: a database URL's password stays out of ps.
            env={**os.environ, DB_ENV: self.db},
        )
        try:
            out, _ = await process.communicate()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        lines = out.decode(errors="replace").strip().splitlines()
        log.info(
            "scheduled refit of %s (exit %s): %s",
            name,
            process.returncode,
            lines[-1] if lines else "",
        )
        return int(process.returncode or 0)
